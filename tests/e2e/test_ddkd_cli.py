"""End to end: DDKD through tools/train.py on a tiny CIFAR-100-format folder, then resumed."""

from __future__ import annotations

import json
import math
import os

import torch

from tests.helpers import REPO_ROOT, TRAIN, run_cli, write_teacher_checkpoint

#: tiny batches: one intra-op thread is faster, and far faster when the cores are shared


def test_ddkd_vgg13_mv2_trains_one_epoch_and_resumes(tiny_cifar_root, tmp_path):
    ckpt = write_teacher_checkpoint(str(tmp_path / "teacher" / "vgg13.pth"), "vgg13")
    prefix = str(tmp_path / "out")
    overrides = [
        "SOLVER.BATCH_SIZE", "16", "DATASET.TEST.BATCH_SIZE", "16", "DATASET.NUM_WORKERS", "0",
        "DATASET.ROOT", tiny_cifar_root, "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
        "LOG.PREFIX", prefix, "DISTILLER.TEACHER_CKPT", ckpt, "SOLVER.DEVICE", "cpu",
    ]
    cfg = os.path.join("configs", "cifar100", "ddkd", "vgg13_mv2.yaml")
    proc = run_cli([TRAIN, "--cfg", cfg, "SOLVER.EPOCHS", "1", *overrides], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = os.path.join(prefix, "cifar100_baselines", "ddkd_vgg13_MobileNetV2")
    for name in ("worklog.txt", "latest", "student_latest", "student_best"):
        assert os.path.exists(os.path.join(out, name)), name

    latest = torch.load(os.path.join(out, "latest"), weights_only=True)
    keys = set(latest["model"])
    # the diffusion modules are saved with the distiller (so --resume restores them) ...
    for prefix_ in ("autoencoder.", "feat_branch.noise_net.", "feat_branch.adapter.", "logit_branch.noise_net."):
        assert any(k.startswith(prefix_) for k in keys), prefix_
    # ... but the student checkpoint is exactly a MobileNetV2 state dict
    student = torch.load(os.path.join(out, "student_latest"), weights_only=True)["model"]
    from mdistiller_ddkd.models import get_model

    assert list(student) == list(get_model("MobileNetV2").state_dict())
    results = json.loads(open(os.path.join(out, "results.json")).read())
    assert results["method"] == "DDKD" and results["epoch"] == 1
    assert all(math.isfinite(v) for h in results["history"] for v in h.values() if isinstance(v, float))

    proc = run_cli([TRAIN, "--cfg", cfg, "--resume", "SOLVER.EPOCHS", "2", *overrides], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    resumed = torch.load(os.path.join(out, "latest"), weights_only=True)
    assert resumed["epoch"] == 2
    assert set(resumed["model"]) == keys
    # training went on from the restored diffusion modules
    name = "feat_branch.noise_net.time_embedding.weight"
    assert not torch.equal(resumed["model"][name], latest["model"][name])
