"""AT, NST, SP and KDSVD end to end through tools/train.py: one epoch on tiny CIFAR data from their shipped
res32x4_res8x4 config, with a small pair (resnet8x4 teacher from a written checkpoint, resnet8 student)."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from tests.helpers import REPO_ROOT, TRAIN, run_cli, write_teacher_checkpoint


@pytest.mark.parametrize("method", ["at", "nst", "sp", "kdsvd"])
def test_new_method_trains_one_epoch(method, tiny_cifar_root, tmp_path):
    ckpt = write_teacher_checkpoint(str(tmp_path / "teacher" / "ckpt.pth"), "resnet8x4")
    prefix = str(tmp_path / "out")
    cfg_file = os.path.join("configs", "cifar100", method, "res32x4_res8x4.yaml")
    opts = {
        "DISTILLER.TEACHER": "resnet8x4", "DISTILLER.STUDENT": "resnet8", "DISTILLER.TEACHER_CKPT": ckpt,
        "EXPERIMENT.NAME": method, "DATASET.ROOT": tiny_cifar_root, "DATASET.CHECK_INTEGRITY": "False",
        "DATASET.DOWNLOAD": "False", "DATASET.NUM_WORKERS": "0", "SOLVER.EPOCHS": "1", "SOLVER.BATCH_SIZE": "16",
        "DATASET.TEST.BATCH_SIZE": "16", "LOG.PREFIX": prefix, "SOLVER.DEVICE": "cpu",
    }
    proc = run_cli([TRAIN, "--cfg", cfg_file, *[x for kv in opts.items() for x in kv]], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = os.path.join(prefix, "cifar100_baselines", method)
    results = json.loads(open(os.path.join(out, "results.json")).read())
    assert results["method"] == method.upper() and results["epoch"] == 1
    record = results["history"][0]
    # the distillation term was part of every step and is finite
    assert math.isfinite(record["train_loss_feat"]) and record["train_loss_feat"] > 0
    assert math.isfinite(record["train_loss_ce"]) and math.isfinite(record["test_acc"])
    # no extra parameters: the distiller checkpoint is student + teacher, the student one a resnet8
    latest = torch.load(os.path.join(out, "latest"), weights_only=True)["model"]
    assert all(k.startswith(("student.", "teacher.")) for k in latest)
    from mdistiller_ddkd.models import get_model

    student = torch.load(os.path.join(out, "student_latest"), weights_only=True)["model"]
    assert list(student) == list(get_model("resnet8").state_dict())
