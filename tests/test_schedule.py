"""The schedules that mirror mdistiller, checked against mdistiller's own formulas at the epochs where they
change (and around them): the learning-rate steps (``engine/trainer.py``; mdistiller's
``adjust_learning_rate``: ``LR * DECAY_RATE ** sum(epoch > stages)`` for the 1-based epoch) and the linear
warm-up of DKD, DDKD's DKD term and ReviewKD (mdistiller: ``min(epoch / warmup, 1)``), through the
distillers themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.trainer import learning_rate
from mdistiller_ddkd.models import get_model


def mdistiller_lr(epoch: int, lr: float, stages, rate: float) -> float:
    steps = int(np.sum(epoch > np.asarray(stages)))
    return lr * rate**steps if steps > 0 else lr


STAGES = [150, 180, 210]
BOUNDARY_EPOCHS = [1, 149, 150, 151, 179, 180, 181, 209, 210, 211, 240]


@pytest.mark.parametrize("epoch", BOUNDARY_EPOCHS)
def test_learning_rate_is_mdistillers_step_decay_at_every_boundary(epoch):
    cfg = load_config(None, ["SOLVER.LR", "0.05", "SOLVER.LR_DECAY_RATE", "0.1"])
    assert list(cfg.SOLVER.LR_DECAY_STAGES) == STAGES
    assert learning_rate(cfg, epoch) == pytest.approx(mdistiller_lr(epoch, 0.05, STAGES, 0.1), rel=1e-12)


def test_the_decay_epoch_itself_still_trains_at_the_rate_before_it():
    cfg = load_config(None, ["SOLVER.LR", "0.01"])
    assert [learning_rate(cfg, e) for e in (150, 151, 180, 181, 210, 211)] == pytest.approx(
        [0.01, 0.001, 0.001, 0.0001, 0.0001, 0.00001], rel=1e-12)


def test_a_single_decay_stage_with_another_rate():
    cfg = load_config(None, ["SOLVER.LR_DECAY_STAGES", "[5]", "SOLVER.LR_DECAY_RATE", "0.5"])
    assert [learning_rate(cfg, e) for e in (4, 5, 6)] == pytest.approx([0.05, 0.05, 0.025])


def _distiller(method: str, *opts: str):
    torch.manual_seed(0)
    cfg = load_config(None, ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", "resnet8x4", "DISTILLER.STUDENT",
                             "resnet8", *opts])
    student, teacher = get_model("resnet8", num_classes=100), get_model("resnet8x4", num_classes=100)
    return distiller_dict[method].build(student, teacher, cfg, 8).eval()


def _term(distiller, key: str, epoch: int) -> float:
    torch.manual_seed(1)
    image, target = torch.randn(4, 3, 32, 32), torch.randint(0, 100, (4,))
    with torch.no_grad():
        return float(distiller.forward_train(image=image, target=target, epoch=epoch)[1][key])


@pytest.mark.parametrize("method,key,warmup_key,warmup", [
    ("DKD", "loss_kd", "DKD.WARMUP", 20),
    ("DDKD", "loss_kd_logit", "DDKD.DKD.WARMUP", 20),
    ("REVIEWKD", "loss_feat", "REVIEWKD.WARMUP_EPOCHS", 20),
])
def test_warmup_is_min_epoch_over_warmup_and_one_at_its_boundaries(method, key, warmup_key, warmup):
    opts = ["REVIEWKD.SHAPES", "[1,8,16,32]", "REVIEWKD.OUT_SHAPES", "[1,8,16,32]",
            "REVIEWKD.IN_CHANNELS", "[16,32,64,64]", "REVIEWKD.OUT_CHANNELS", "[64,128,256,256]"] \
        if method == "REVIEWKD" else []
    distiller = _distiller(method, warmup_key, str(warmup), *opts)
    full = _term(distiller, key, epoch=10 * warmup)  # far past the warm-up: the factor is 1
    assert full > 0
    for epoch in (1, warmup - 1, warmup, warmup + 1):
        expected = min(epoch / warmup, 1.0) * full  # mdistiller's factor
        assert _term(distiller, key, epoch) == pytest.approx(expected, rel=1e-5), epoch
