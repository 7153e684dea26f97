"""RKD: Park et al., "Relational Knowledge Distillation" (CVPR 2019), on the pooled features.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * (DISTANCE_WEIGHT * distance-wise + ANGLE_WEIGHT * angle-wise)``;
distances use ``RKD.PDIST.EPSILON`` and ``RKD.PDIST.SQUARED``. No extra parameters (relations compare
structures within each network, so student and teacher dimensions may differ).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.relational import rkd_loss
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.DISTANCE_WEIGHT = 25
_C.ANGLE_WEIGHT = 50
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 1.0
_C.PDIST = CN()
_C.PDIST.EPSILON = 1e-12
_C.PDIST.SQUARED = False


@register_distiller("RKD", config=_C)
class RKD(Distiller):
    """Cross-entropy plus distance- and angle-wise relational losses on ``feats["pooled_feat"]``."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.RKD.LOSS.CE_WEIGHT
        self.feat_weight = cfg.RKD.LOSS.FEAT_WEIGHT
        self.distance_weight = cfg.RKD.DISTANCE_WEIGHT
        self.angle_weight = cfg.RKD.ANGLE_WEIGHT
        self.eps = cfg.RKD.PDIST.EPSILON
        self.squared = cfg.RKD.PDIST.SQUARED

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        loss_rkd = rkd_loss(
            feats_student["pooled_feat"].float(),
            feats_teacher["pooled_feat"].float(),
            self.distance_weight,
            self.angle_weight,
            self.squared,
            self.eps,
        )
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * loss_rkd,
        }
        return logits_student, losses
