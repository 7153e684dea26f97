"""NONE: plain cross-entropy training of the student (the baseline every table starts from)."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Distiller
from .registry import register_distiller


@register_distiller("NONE")
class Vanilla(Distiller):
    """Trains the student alone; built like mdistiller's ``Vanilla(student)``."""

    needs_teacher = False

    def __init__(self, student, teacher=None, cfg=None):
        super().__init__(student, None)

    def forward_train(self, image, target, **kwargs):
        logits_student, _ = self.student(image)
        return logits_student, {"loss_ce": F.cross_entropy(logits_student, target)}
