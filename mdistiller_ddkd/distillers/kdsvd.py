"""KDSVD: Lee, Kim & Song, "Self-supervised Knowledge Distillation Using Singular Value Decomposition"
(ECCV 2018), as mdistiller runs it.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * kdsvd_loss(student maps, teacher maps, K)`` over the stage outputs
after the stem (see :mod:`~mdistiller_ddkd.distillers._stages`). The singular vectors live along the maps'
width and the RBF kernels between consecutive stages compare them entry by entry, so the student's and the
teacher's maps must have the same width at every stage: of Tables 2/3 the six same-family pairs qualify;
the five cross-family ones (ShuffleNet/MobileNetV2 students, whose maps are half as wide) are refused at
build time (upstream fails there with a shape error mid-step). No extra parameters.
Maths: :mod:`mdistiller_ddkd.losses.svd`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.svd import kdsvd_loss
from ._stages import probe_stage_shapes, stage_pairs
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.K = 1
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 1.0


@register_distiller("KDSVD", config=_C)
class KDSVD(Distiller):
    """Cross-entropy plus SVD-based transfer of the relations between consecutive stages."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.k = int(cfg.KDSVD.K)
        if self.k < 1:
            raise ValueError(f"KDSVD.K must be >= 1 (teacher singular vectors kept), got {cfg.KDSVD.K}")
        self.ce_weight = cfg.KDSVD.LOSS.CE_WEIGHT
        self.feat_weight = cfg.KDSVD.LOSS.FEAT_WEIGHT
        shapes_s, shapes_t = probe_stage_shapes(student, teacher, cfg, "KDSVD", min_pairs=2)
        widths_s, widths_t = [s[2] for s in shapes_s], [t[2] for t in shapes_t]
        if widths_s != widths_t:
            raise ValueError(
                f"KDSVD cannot serve {cfg.DISTILLER.TEACHER} -> {cfg.DISTILLER.STUDENT}: it compares singular "
                f"vectors stage by stage and needs equal map widths, but the student's stages are {widths_s} wide "
                f"and the teacher's {widths_t}; use AT, NST or SP (which pool the larger map) or FITNET instead"
            )

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        maps_s, maps_t = stage_pairs(feats_student["feats"], feats_teacher["feats"])
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * kdsvd_loss(maps_s, maps_t, self.k),
        }
        return logits_student, losses
