"""SP: Tung & Mori, "Similarity-Preserving Knowledge Distillation" (ICCV 2019), as mdistiller runs it.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * sp_loss(student's last map, teacher's last map)``
(``feats["feats"][-1]``). The B×B similarity matrices do not depend on channel counts or spatial sizes, so
every pair is served. No extra parameters. Maths: :mod:`mdistiller_ddkd.losses.similarity`.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.similarity import sp_loss
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 3000.0


@register_distiller("SP", config=_C)
class SP(Distiller):
    """Cross-entropy plus similarity preservation on the last stage's feature map."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.SP.LOSS.CE_WEIGHT
        self.feat_weight = cfg.SP.LOSS.FEAT_WEIGHT

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        loss_sp = sp_loss(feats_student["feats"][-1].float(), feats_teacher["feats"][-1].float())
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * loss_sp,
        }
        return logits_student, losses
