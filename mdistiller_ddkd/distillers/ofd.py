"""OFD: Heo et al., "A Comprehensive Overhaul of Feature Distillation" (ICCV 2019), as mdistiller has it.

Levels: the pre-ReLU stage features ``feats["preact_feats"][1:]`` (the stem dropped) of both networks,
aligned from the deep end and limited to the teacher's BatchNorms-before-ReLU (``get_bn_before_relu()``,
also aligned from the deep end): ``n = min(#teacher levels, #student levels, #teacher BNs)``. Each level has
a connector (``KERNEL_SIZE``×``KERNEL_SIZE`` conv, no bias, + BatchNorm; conv weights ~ N(0, 2/(k²·C_t)),
BN weight 1 and bias 0) from the student's channels to the teacher's, and a margin per teacher channel from
that BN's weight and bias (see :mod:`mdistiller_ddkd.losses.ofd`).

As in mdistiller and OFD's own code (whose training loop calls ``t_net.train()``), the teacher's BatchNorms
normalise with the batch's statistics during distillation: the margins assume a teacher pre-ReLU response
distributed as N(β, γ²), which is what a BatchNorm in training mode outputs. Unlike upstream, the
teacher's running statistics are not updated by this (they do not enter the training loss), and the
teacher stays in eval mode otherwise.

Upstream differences (the losses and gradients are upstream's wherever upstream runs):

- channels come from the probed features, not ``get_stage_channels()``: mdistiller's fixed
  ``[256, 512, 1024, 2048]`` of its ImageNet ResNets is wrong for ResNet-18/34 and ShuffleNetV1 has none;
- the margins are aligned to the levels; mdistiller pairs ``margins[i]`` with level ``i`` unaligned,
  which breaks when the teacher names more BNs than there are levels (its CIFAR ResNet50).

A student without pre-ReLU features (MobileNetV2 returns none, as in mdistiller) or a teacher without
``get_bn_before_relu()`` (ShuffleNets) cannot be served: building raises a ConfigError saying so.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from ..losses.ofd import ofd_loss, ofd_margin
from .base import Distiller, probe_features, probe_input_size
from .registry import register_distiller

_C = CN()
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 0.001
_C.CONNECTOR = CN()
_C.CONNECTOR.KERNEL_SIZE = 1


def build_connector(s_channels: int, t_channels: int, kernel_size: int = 1) -> nn.Sequential:
    """OFD's connector: conv (no bias, 'same' padding for odd kernels) + BatchNorm, initialised as OFD."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ConfigError(f"OFD.CONNECTOR.KERNEL_SIZE must be a positive odd number, got {kernel_size}")
    conv = nn.Conv2d(s_channels, t_channels, kernel_size, stride=1, padding=(kernel_size - 1) // 2, bias=False)
    nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (kernel_size * kernel_size * t_channels)))
    bn = nn.BatchNorm2d(t_channels)  # weight 1, bias 0
    return nn.Sequential(conv, bn)


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """Within the block, every BatchNorm of ``module`` normalises with the batch's statistics (as in
    training mode) and leaves its running estimates untouched; their modes are restored afterwards."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in bns]
    for m in bns:
        m.training, m.track_running_stats = True, False
    try:
        yield
    finally:
        for m, (training, tracking) in zip(bns, saved):
            m.training, m.track_running_stats = training, tracking


def _teacher_bns(teacher: nn.Module, name: str) -> List[nn.Module]:
    try:
        return list(teacher.get_bn_before_relu())
    except (NotImplementedError, AttributeError):
        raise ConfigError(
            f"OFD cannot use {name} as the teacher: it names no BatchNorms before its ReLUs "
            f"(get_bn_before_relu), from which OFD's margins come; choose another teacher"
        ) from None


def _preact_levels(model: nn.Module, size, role: str, name: str) -> List[torch.Tensor]:
    feats = probe_features(model, size)[1].get("preact_feats") or []
    if len(feats) < 2:
        raise ConfigError(
            f"OFD cannot use {name} as the {role}: it returns no pre-ReLU stage features "
            f"(feats['preact_feats']), which OFD distils; choose another {role} or method"
        )
    return list(feats[1:])


def ofd_levels(student: nn.Module, teacher: nn.Module, cfg) -> Tuple[List[int], List[int], List[nn.Module]]:
    """(student channels, teacher channels, teacher BNs) of the ``n`` deepest common levels."""
    s_name, t_name = cfg.DISTILLER.STUDENT, cfg.DISTILLER.TEACHER
    bns = _teacher_bns(teacher, t_name)
    size = probe_input_size(cfg)
    t_levels = _preact_levels(teacher, size, "teacher", t_name)
    s_levels = _preact_levels(student, size, "student", s_name)
    n = min(len(t_levels), len(s_levels), len(bns))
    t_levels, s_levels, bns = t_levels[-n:], s_levels[-n:], bns[-n:]
    for i, (bn, feat) in enumerate(zip(bns, t_levels)):
        if bn.num_features != feat.shape[1]:
            raise ConfigError(
                f"OFD: {t_name}'s BatchNorm-before-ReLU {i} has {bn.num_features} channels but its pre-ReLU "
                f"level {i} has {feat.shape[1]}; its get_bn_before_relu() does not match its preact_feats"
            )
    return [int(f.shape[1]) for f in s_levels], [int(f.shape[1]) for f in t_levels], bns


@register_distiller("OFD", config=_C)
class OFD(Distiller):
    """Cross-entropy plus ``FEAT_WEIGHT * Σ_i d(connector_i(s_i), pool(t_i), m_i) / 2^(n-1-i)``.

    Extra parameters: the connectors (conv + BN per level); the margins are non-persistent buffers.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.OFD.LOSS.CE_WEIGHT
        self.feat_weight = cfg.OFD.LOSS.FEAT_WEIGHT
        s_channels, t_channels, bns = ofd_levels(student, teacher, cfg)
        kernel = int(cfg.OFD.CONNECTOR.KERNEL_SIZE)
        self.connectors = nn.ModuleList(build_connector(s, t, kernel) for s, t in zip(s_channels, t_channels))
        self.num_levels = len(bns)
        for i, bn in enumerate(bns):
            self.register_buffer(f"margin{i}", ofd_margin(bn.weight, bn.bias), persistent=False)

    @property
    def margins(self) -> List[torch.Tensor]:
        """The per-channel margins of the levels, shallow to deep."""
        return [getattr(self, f"margin{i}") for i in range(self.num_levels)]

    def distill_terms(self, feats_student: dict, feats_teacher: dict) -> Tuple[Sequence, Sequence]:
        """(connector outputs, teacher pre-ReLU maps) of the levels, shallow to deep."""
        n = self.num_levels
        sources = [c(f) for c, f in zip(self.connectors, feats_student["preact_feats"][-n:])]
        return sources, feats_teacher["preact_feats"][-n:]

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        with batch_statistics(self.teacher):
            _, feats_teacher = self.teacher_forward(image)
        sources, targets = self.distill_terms(feats_student, feats_teacher)
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * ofd_loss(sources, targets, self.margins),
        }
        return logits_student, losses
