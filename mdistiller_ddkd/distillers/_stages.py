"""The stage pairing of mdistiller's multi-stage feature methods (AT, NST, KDSVD): student stage ``i`` with
teacher stage ``i`` for every stage output but the stem (``feats["feats"][1:]``), as far as the shorter
network goes (``zip``). For the CIFAR pairs of Tables 2/3 both networks have equally many stages; on
ImageNet ResNet50 (4 stages after the stem) → MobileNetV1 (3) pairs ResNet50's first three, as upstream."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import Distiller, probe_features, probe_input_size


def stage_pairs(feats_student: Sequence[torch.Tensor], feats_teacher: Sequence[torch.Tensor]) -> Tuple[List, List]:
    """``(student maps, teacher maps)`` of the distilled stages, float32 (the losses' precision under AMP)."""
    pairs = list(zip(feats_student[1:], feats_teacher[1:]))
    return [s.float() for s, _ in pairs], [t.float() for _, t in pairs]


def probe_stage_shapes(student: nn.Module, teacher: nn.Module, cfg, method: str, min_pairs: int = 1):
    """The (C, H, W) shapes of the paired stages ``(student shapes, teacher shapes)``, probed at the dataset's
    image size; ConfigError when fewer than ``min_pairs`` pairs exist or a stage is not a (B, C, H, W) map."""
    size = probe_input_size(cfg)
    feats_s = probe_features(student, size)[1]["feats"]
    feats_t = probe_features(teacher, size)[1]["feats"]
    pairs = list(zip(feats_s[1:], feats_t[1:]))
    if len(pairs) < min_pairs:
        raise ConfigError(
            f"{method} distills stage outputs after the stem: {cfg.DISTILLER.STUDENT} has {len(feats_s) - 1} and "
            f"{cfg.DISTILLER.TEACHER} {len(feats_t) - 1}, fewer than the {min_pairs} pair(s) it needs; "
            f"choose networks with more stages or another method"
        )
    for s, t in pairs:
        if s.dim() != 4 or t.dim() != 4:
            raise ConfigError(f"{method} needs (B, C, H, W) stage maps, got {tuple(s.shape)} and {tuple(t.shape)}")
    return [tuple(s.shape[1:]) for s, _ in pairs], [tuple(t.shape[1:]) for _, t in pairs]


class StageMapDistiller(Distiller):
    """Cross-entropy plus ``<NODE>.LOSS.FEAT_WEIGHT × stage_loss(student maps, teacher maps)`` over the paired
    stages (``loss_ce``, ``loss_feat``): what AT, NST and KDSVD share. A subclass names its config node
    (``config_key``, with ``LOSS.CE_WEIGHT`` / ``LOSS.FEAT_WEIGHT``), how many stage pairs it needs, and its
    loss; ``check_stages`` may refuse a pair at build time."""

    config_key: str = ""
    min_stage_pairs: int = 1

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        node = cfg[self.config_key]
        self.ce_weight = node.LOSS.CE_WEIGHT
        self.feat_weight = node.LOSS.FEAT_WEIGHT
        self.check_stages(cfg, *probe_stage_shapes(student, teacher, cfg, self.config_key, self.min_stage_pairs))

    def check_stages(self, cfg, shapes_student: List[tuple], shapes_teacher: List[tuple]) -> None:
        """Raise ConfigError when the method cannot serve these stage shapes (default: it can)."""

    def stage_loss(self, maps_student: List[torch.Tensor], maps_teacher: List[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define stage_loss")

    def forward_train(self, image, target, **kwargs) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        maps_s, maps_t = stage_pairs(feats_student["feats"], feats_teacher["feats"])
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * self.stage_loss(maps_s, maps_t),
        }
        return logits_student, losses
