"""KD: Hinton et al., "Distilling the Knowledge in a Neural Network" (2015)."""

from __future__ import annotations

import torch.nn.functional as F
from yacs.config import CfgNode as CN

from ..losses.logit import kd_loss
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.TEMPERATURE = 4
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 0.1
_C.LOSS.KD_WEIGHT = 0.9


@register_distiller("KD", config=_C)
class KD(Distiller):
    """Cross-entropy plus temperature-scaled KL to the teacher's softened predictions."""

    def __init__(self, student, teacher, cfg):
        super().__init__(student, teacher)
        self.temperature = cfg.KD.TEMPERATURE
        self.ce_weight = cfg.KD.LOSS.CE_WEIGHT
        self.kd_weight = cfg.KD.LOSS.KD_WEIGHT

    def forward_train(self, image, target, **kwargs):
        logits_student, _ = self.student(image)
        logits_teacher, _ = self.teacher_forward(image)
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_kd": self.kd_weight * kd_loss(logits_student, logits_teacher, self.temperature),
        }
        return logits_student, losses
