"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention" (ICLR 2017), as mdistiller runs it.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * Σ_stages at_stage_loss(student map, teacher map, P)`` over the stage
outputs after the stem (see :mod:`~mdistiller_ddkd.distillers._stages`); the attention maps are channel
means, so any channel counts work, and a larger map is average-pooled to the smaller size — every pair of
Tables 2/3 is served. No extra parameters. Maths: :mod:`mdistiller_ddkd.losses.attention`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.attention import at_loss
from ._stages import probe_stage_shapes, stage_pairs
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.P = 2
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 1000.0


@register_distiller("AT", config=_C)
class AT(Distiller):
    """Cross-entropy plus attention transfer on every stage after the stem."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.p = cfg.AT.P
        if self.p <= 0:
            raise ValueError(f"AT.P must be positive (the power of the attention map), got {self.p}")
        self.ce_weight = cfg.AT.LOSS.CE_WEIGHT
        self.feat_weight = cfg.AT.LOSS.FEAT_WEIGHT
        probe_stage_shapes(student, teacher, cfg, "AT")

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        maps_s, maps_t = stage_pairs(feats_student["feats"], feats_teacher["feats"])
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * at_loss(maps_s, maps_t, self.p),
        }
        return logits_student, losses
