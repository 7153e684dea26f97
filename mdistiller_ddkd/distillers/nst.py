"""NST: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer" (2017), as
mdistiller runs it.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * Σ_stages MMD²_poly(student map, teacher map)`` over the stage outputs
after the stem (see :mod:`~mdistiller_ddkd.distillers._stages`); each channel is one sample of the
distribution, so channel counts may differ, and a larger map is average-pooled to the smaller size — every
pair of Tables 2/3 is served. No extra parameters. Maths: :mod:`mdistiller_ddkd.losses.mmd`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.mmd import nst_loss
from ._stages import probe_stage_shapes, stage_pairs
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 50.0


@register_distiller("NST", config=_C)
class NST(Distiller):
    """Cross-entropy plus neuron-selectivity transfer (polynomial-kernel MMD) on every stage after the stem."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.NST.LOSS.CE_WEIGHT
        self.feat_weight = cfg.NST.LOSS.FEAT_WEIGHT
        probe_stage_shapes(student, teacher, cfg, "NST")

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        maps_s, maps_t = stage_pairs(feats_student["feats"], feats_teacher["feats"])
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * nst_loss(maps_s, maps_t),
        }
        return logits_student, losses
