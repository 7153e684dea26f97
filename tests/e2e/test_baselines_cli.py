"""The baselines' config files, and CRD / FITNET end to end through tools/train.py on tiny CIFAR data."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mdistiller_ddkd.engine.cfg import load_config
from tests.helpers import CIFAR_PAIRS as PAIRS
from tests.helpers import REPO_ROOT, TRAIN, run_cli, write_teacher_checkpoint

CONFIGS = os.path.join(REPO_ROOT, "configs", "cifar100")

METHODS = ["kd", "dkd", "fitnet", "vid", "rkd", "pkt", "crd", "dist"]
DKD_BETA = {"res56_res20": 2.0, "res110_res32": 2.0, "vgg13_vgg8": 6.0, "vgg13_mv2": 6.0,
            "wrn40_2_wrn_16_2": 6.0, "wrn40_2_wrn_40_1": 6.0}


@pytest.mark.parametrize("method", METHODS)
def test_config_files_for_every_pair(method):
    for pair, (teacher, student) in PAIRS.items():
        cfg = load_config(os.path.join(CONFIGS, method, f"{pair}.yaml"))
        assert cfg.DISTILLER.TYPE == method.upper()
        assert (cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT) == (teacher, student)
        assert cfg.EXPERIMENT.TAG == f"{method},{teacher},{student}"
        assert cfg.EXPERIMENT.PROJECT == "cifar100_baselines" and cfg.EXPERIMENT.NAME == ""
        light_student = student in ("ShuffleV1", "ShuffleV2", "MobileNetV2")
        assert cfg.SOLVER.LR == (0.01 if light_student else 0.05)
        solver = (cfg.SOLVER.BATCH_SIZE, cfg.SOLVER.EPOCHS, list(cfg.SOLVER.LR_DECAY_STAGES))
        assert solver == (64, 240, [150, 180, 210])
        assert (cfg.SOLVER.LR_DECAY_RATE, cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.MOMENTUM) == (0.1, 0.0005, 0.9)
        assert cfg.SOLVER.TYPE == "SGD"
        assert cfg.SOLVER.TRAINER == ("crd" if method == "crd" else "base")
        if method == "dkd":
            assert cfg.DKD.BETA == DKD_BETA.get(pair, 8.0)
            assert (cfg.DKD.ALPHA, cfg.DKD.T, cfg.DKD.WARMUP, cfg.DKD.CE_WEIGHT) == (1.0, 4.0, 20, 1.0)
        if method == "dist":
            dist = cfg.DIST
            assert (dist.TEMPERATURE, dist.KD_WEIGHT * dist.BETA, dist.KD_WEIGHT * dist.GAMMA) == (4.0, 2.0, 2.0)
        if method == "crd":
            assert (cfg.CRD.NCE.K, cfg.CRD.NCE.MOMENTUM, cfg.CRD.NCE.TEMPERATURE) == (16384, 0.5, 0.07)
            assert (cfg.CRD.FEAT.DIM, cfg.CRD.MODE, cfg.CRD.LOSS.FEAT_WEIGHT) == (128, "exact", 0.8)


def _overrides(root: str, prefix: str, ckpt: str):
    opts = {
        "DATASET.ROOT": root, "DATASET.CHECK_INTEGRITY": "False", "DATASET.DOWNLOAD": "False",
        "DATASET.NUM_WORKERS": "0", "SOLVER.EPOCHS": "1", "SOLVER.BATCH_SIZE": "16",
        "DATASET.TEST.BATCH_SIZE": "16", "LOG.PREFIX": prefix, "DISTILLER.TEACHER_CKPT": ckpt,
        "CRD.NCE.K": "32", "SOLVER.DEVICE": "cpu",
    }
    return [x for kv in opts.items() for x in kv]


def _train(method: str, pair: str, root: str, tmp_path):
    teacher = PAIRS[pair][0]
    ckpt = write_teacher_checkpoint(str(tmp_path / "teacher" / "ckpt.pth"), teacher)
    cfg_file = os.path.join(CONFIGS, method, f"{pair}.yaml")
    proc = run_cli([TRAIN, "--cfg", cfg_file, *_overrides(root, str(tmp_path / "out"), ckpt)], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "out" / "cifar100_baselines" / f"{method}_{PAIRS[pair][0]}_{PAIRS[pair][1]}"
    for name in ("worklog.txt", "latest", "best", "student_latest", "student_best"):
        assert (out / name).exists(), name
    results = json.loads((out / "results.json").read_text())
    assert results["epoch"] == 1 and all(torch.isfinite(torch.tensor(h["test_acc"])) for h in results["history"])
    latest = torch.load(out / "latest", weights_only=True)["model"]
    student = torch.load(out / "student_latest", weights_only=True)["model"]
    return latest, student


def test_crd_trains_end_to_end(tiny_cifar_root, tmp_path):
    latest, student = _train("crd", "wrn40_2_wrn_16_2", tiny_cifar_root, tmp_path)
    # the memory banks cover the 96 tiny training images, stay unit-norm, and were updated
    for key in ("memory_student", "memory_teacher"):
        bank = latest[key]
        assert bank.shape == (96, 128)
        assert torch.allclose(bank.norm(dim=1), torch.ones(96), atol=1e-4)
    assert latest["z_student"].item() > 0 and latest["z_teacher"].item() > 0
    assert latest["embed_s.linear.weight"].shape == (128, 128)  # wrn_16_2 pooled feature: 128
    assert not any(k.startswith(("memory", "embed")) for k in student)


def test_fitnet_cross_family_trains_end_to_end(tiny_cifar_root, tmp_path):
    latest, student = _train("fitnet", "wrn40_2_shuv1", tiny_cifar_root, tmp_path)
    # ShuffleV1's stage-2 map (480×8×8) is upsampled to wrn_40_2's (64×16×16) by a transposed conv
    assert latest["regressor.conv.weight"].shape == (480, 64, 4, 4)
    assert not any(k.startswith("regressor") for k in student)
