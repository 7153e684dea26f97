"""DKD: Zhao et al., "Decoupled Knowledge Distillation" (CVPR 2022)."""

from __future__ import annotations

import torch.nn.functional as F
from yacs.config import CfgNode as CN

from ..losses.logit import dkd_loss
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.CE_WEIGHT = 1.0
_C.ALPHA = 1.0
_C.BETA = 8.0
_C.T = 4.0
_C.WARMUP = 20


def warmup_factor(epoch: float, warmup_epochs: float) -> float:
    """Linear warm-up of the distillation weight: ``min(epoch / warmup, 1)`` (1 when warm-up is 0)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(float(epoch) / float(warmup_epochs), 1.0)


@register_distiller("DKD", config=_C)
class DKD(Distiller):
    """Cross-entropy plus ``warmup(epoch) * (alpha * TCKD + beta * NCKD)``."""

    def __init__(self, student, teacher, cfg):
        super().__init__(student, teacher)
        self.ce_weight = cfg.DKD.CE_WEIGHT
        self.alpha = cfg.DKD.ALPHA
        self.beta = cfg.DKD.BETA
        self.temperature = cfg.DKD.T
        self.warmup = cfg.DKD.WARMUP

    def forward_train(self, image, target, epoch=1, **kwargs):
        logits_student, _ = self.student(image)
        logits_teacher, _ = self.teacher_forward(image)
        loss_dkd = warmup_factor(epoch, self.warmup) * dkd_loss(
            logits_student, logits_teacher, target, self.alpha, self.beta, self.temperature
        )
        loss_ce = self.ce_weight * F.cross_entropy(logits_student, target)
        return logits_student, {"loss_ce": loss_ce, "loss_kd": loss_dkd}
