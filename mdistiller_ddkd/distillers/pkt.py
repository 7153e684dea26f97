"""PKT: Passalis & Tefas, "Learning Deep Representations with Probabilistic Knowledge Transfer"
(ECCV 2018), on the pooled features.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * KL(P_teacher || P_student)`` where ``P`` are the cosine-kernel
conditional probabilities over the batch. No extra parameters.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..losses.feature import pkt_loss
from .base import Distiller
from .registry import register_distiller

_C = CN()
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 30000.0


@register_distiller("PKT", config=_C)
class PKT(Distiller):
    """Cross-entropy plus the probabilistic-knowledge-transfer loss on ``feats["pooled_feat"]``."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.PKT.LOSS.CE_WEIGHT
        self.feat_weight = cfg.PKT.LOSS.FEAT_WEIGHT

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        loss_pkt = pkt_loss(feats_student["pooled_feat"].float(), feats_teacher["pooled_feat"].float())
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * loss_pkt,
        }
        return logits_student, losses
