"""OFD and REVIEWKD end to end through tools/train.py: one epoch on tiny CIFAR data with a teacher
checkpoint in mdistiller's format, from the shipped config files."""

from __future__ import annotations

import json
import os

import pytest
import torch

from tests.helpers import CIFAR_PAIRS, REPO_ROOT, TRAIN, run_cli, write_teacher_checkpoint


def _train(method: str, pair: str, root: str, tmp_path):
    teacher, student = CIFAR_PAIRS[pair]
    ckpt = write_teacher_checkpoint(str(tmp_path / "teacher" / "ckpt.pth"), teacher)
    opts = {
        "DATASET.ROOT": root, "DATASET.CHECK_INTEGRITY": "False", "DATASET.DOWNLOAD": "False",
        "DATASET.NUM_WORKERS": "0", "SOLVER.EPOCHS": "1", "SOLVER.BATCH_SIZE": "16",
        "DATASET.TEST.BATCH_SIZE": "16", "LOG.PREFIX": str(tmp_path / "out"), "DISTILLER.TEACHER_CKPT": ckpt,
        "SOLVER.DEVICE": "cpu",
    }
    cfg_file = os.path.join(REPO_ROOT, "configs", "cifar100", method, f"{pair}.yaml")
    args = [TRAIN, "--cfg", cfg_file] + [x for kv in opts.items() for x in kv]
    proc = run_cli(args, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "out" / "cifar100_baselines" / f"{method}_{teacher}_{student}"
    results = json.loads((out / "results.json").read_text())
    assert results["epoch"] == 1 and all(torch.isfinite(torch.tensor(h["test_acc"])) for h in results["history"])
    latest = torch.load(out / "latest", weights_only=True)["model"]
    student_sd = torch.load(out / "student_latest", weights_only=True)["model"]
    return latest, student_sd


@pytest.mark.parametrize("method,pair,prefix,shape", [
    # wrn_16_2's three pre-ReLU stages (32, 64, 128 channels) -> wrn_40_2's, one 1x1 connector each
    ("ofd", "wrn40_2_wrn_16_2", "connectors.2.0.weight", (128, 128, 1, 1)),
    # the deepest ABF (ShuffleV1's pooled 960-vector, no attention) -> wrn_40_2's 128 channels
    ("reviewkd", "wrn40_2_shuv1", "abfs.0.conv2.0.weight", (128, 512, 3, 3)),
])
def test_trains_one_epoch_from_the_config_file(method, pair, prefix, shape, tiny_cifar_root, tmp_path):
    latest, student = _train(method, pair, tiny_cifar_root, tmp_path)
    assert tuple(latest[prefix].shape) == shape
    own = prefix.split(".")[0]
    assert not any(k.startswith(own) for k in student)
    assert not any(k.startswith("margin") for k in latest)


def test_reviewkd_trains_a_pair_without_its_lists(tmp_path):
    """``DISTILLER.TYPE REVIEWKD`` on a pair no config covers (resnet8x4 -> resnet8), with no level list
    given: the levels follow the models."""
    teacher = write_teacher_checkpoint(str(tmp_path / "teacher.pth"), "resnet8x4", num_classes=10)
    proc = run_cli([TRAIN, "DISTILLER.TYPE", "REVIEWKD", "DISTILLER.TEACHER", "resnet8x4", "DISTILLER.STUDENT",
                    "resnet8", "DISTILLER.TEACHER_CKPT", teacher, "DATASET.TYPE", "synthetic",
                    "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "2", "DATASET.SYNTHETIC.TEST_PER_CLASS", "1",
                    "DATASET.NUM_WORKERS", "0", "SOLVER.BATCH_SIZE", "8", "SOLVER.EPOCHS", "1", "SOLVER.DEVICE", "cpu",
                    "LOG.PREFIX", str(tmp_path / "out"), "EXPERIMENT.NAME", "review"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    latest = torch.load(tmp_path / "out" / "distill" / "review" / "latest", weights_only=True)["model"]
    # deepest ABF: resnet8's pooled 64-vector -> resnet8x4's 256 channels; shallowest: -> its first stage's 64
    assert tuple(latest["abfs.0.conv1.0.weight"].shape) == (64, 64, 1, 1)
    assert tuple(latest["abfs.0.conv2.0.weight"].shape) == (256, 64, 3, 3)
    assert tuple(latest["abfs.3.conv2.0.weight"].shape) == (64, 64, 3, 3)
