"""DIST: Huang et al., "Knowledge Distillation from A Stronger Teacher" (NeurIPS 2022).

Not in mdistiller. Config node ``DIST`` (defaults = the paper's CIFAR-100 setting τ = 4, β = γ = 2,
expressed as ``KD_WEIGHT * (BETA * inter + GAMMA * intra)`` with KD_WEIGHT 2, BETA = GAMMA = 1):

- ``DIST.CE_WEIGHT`` (1.0): cross-entropy weight;
- ``DIST.KD_WEIGHT`` (2.0): weight of the relational loss;
- ``DIST.BETA`` (1.0) / ``DIST.GAMMA`` (1.0): inter-class / intra-class relation weights;
- ``DIST.TEMPERATURE`` (4.0): softmax temperature τ (the losses are scaled by τ²).

The Pearson correlations are the authors' (hunto/DIST_KD: eps added to the product of the norms; see
:mod:`mdistiller_ddkd.losses.dist`). No extra parameters.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.dist import dist_loss
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.CE_WEIGHT = 1.0
_C.KD_WEIGHT = 2.0
_C.BETA = 1.0
_C.GAMMA = 1.0
_C.TEMPERATURE = 4.0


@register_distiller("DIST", config=_C)
class DIST(Distiller):
    """Cross-entropy plus ``KD_WEIGHT * τ² * (BETA * inter-class + GAMMA * intra-class)`` Pearson relations."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.DIST.CE_WEIGHT
        self.kd_weight = cfg.DIST.KD_WEIGHT
        self.beta = cfg.DIST.BETA
        self.gamma = cfg.DIST.GAMMA
        self.temperature = cfg.DIST.TEMPERATURE

    def forward_train(self, image, target, **kwargs):
        logits_student, _ = self.student(image)
        logits_teacher, _ = self.teacher_forward(image)
        loss_dist = dist_loss(
            logits_student.float(), logits_teacher.float(), self.beta, self.gamma, self.temperature
        )
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_kd": self.kd_weight * loss_dist,
        }
        return logits_student, losses
