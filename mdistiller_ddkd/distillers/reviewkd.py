"""ReviewKD: Chen et al., "Distilling Knowledge via Knowledge Review" (CVPR 2021), as mdistiller has it.

The student's levels, shallow to deep, are its stage features (``feats["feats"]``, or ``preact_feats``
when ``STU_PREACT``) followed by its pooled feature as a 1×1 map; the deepest ``L = len(IN_CHANNELS)`` are
used. They are reviewed deep to shallow by attention-based fusion (ABF) modules: each maps its level to
``mid = min(MAX_MID_CHANNEL, IN_CHANNELS[-1])`` channels (1×1 conv + BN), fuses it with the previous
(deeper) fused map upsampled (nearest) to its size, by a two-channel sigmoid attention
(``x·a₀ + y·a₁``, from a 1×1 conv with bias over both; the deepest level has no fusion), resizes the
result (nearest) to the teacher level's size and outputs a 3×3 conv + BN to the teacher's channels. The
outputs are compared with the teacher's levels ``preact_feats[1:] + [pooled]`` by HCL
(:mod:`mdistiller_ddkd.losses.review`); the term is ``REVIEWKD_WEIGHT · min(epoch / WARMUP_EPOCHS, 1)``.

Config lists are deep-first for shapes and shallow-first for channels, as upstream: ``SHAPES`` /
``OUT_SHAPES`` are the student's / teacher's level sizes deepest first (``SHAPES[0]``, the pooled level,
is never used to resize); ``IN_CHANNELS`` / ``OUT_CHANNELS`` the student's / teacher's channels shallowest
first. A list left at mdistiller's default (``[1, 8, 16, 32]`` / ``[64, 128, 256, 256]``; a value equal to
it counts as not given) takes what the models produce (probed at build time), so any pair trains without
them; a list the config gives must equal the probed one, and a mismatch is a ConfigError that names the
right values. The packaged configs state them.

Upstream difference: mdistiller ignores ``MAX_MID_CHANNEL`` (it always uses ``min(512, IN_CHANNELS[-1])``),
so its ResNet50 -> MobileNetV1 file's ``MAX_MID_CHANNEL: 256`` has no effect there; here it is read (256 is
ReviewKD's own ImageNet setting). With the default 512 both are the same.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from ..losses.review import hcl_loss
from .base import Distiller, probe_features, probe_input_size
from .dkd import warmup_factor
from .registry import register_distiller

_C = CN()
_C.CE_WEIGHT = 1.0
_C.REVIEWKD_WEIGHT = 1.0
_C.WARMUP_EPOCHS = 20
_C.SHAPES = [1, 8, 16, 32]
_C.OUT_SHAPES = [1, 8, 16, 32]
_C.IN_CHANNELS = [64, 128, 256, 256]
_C.OUT_CHANNELS = [64, 128, 256, 256]
_C.MAX_MID_CHANNEL = 512
_C.STU_PREACT = False


class ABF(nn.Module):
    """Attention-based fusion of one student level with the fused map of the level below it."""

    def __init__(self, in_channel: int, mid_channel: int, out_channel: int, fuse: bool) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_channel, mid_channel, 1, bias=False), nn.BatchNorm2d(mid_channel))
        self.conv2 = nn.Sequential(
            nn.Conv2d(mid_channel, out_channel, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(out_channel)
        )
        self.att_conv = nn.Sequential(nn.Conv2d(2 * mid_channel, 2, 1), nn.Sigmoid()) if fuse else None
        nn.init.kaiming_uniform_(self.conv1[0].weight, a=1)
        nn.init.kaiming_uniform_(self.conv2[0].weight, a=1)

    def forward(
        self, x: torch.Tensor, residual: Optional[torch.Tensor] = None, shape: int = 0, out_shape: int = 0
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(output at the teacher's size and channels, fused map for the next shallower level)``."""
        x = self.conv1(x)
        if self.att_conv is not None:
            residual = F.interpolate(residual, (shape, shape), mode="nearest")
            attention = self.att_conv(torch.cat([x, residual], dim=1))
            x = x * attention[:, 0:1] + residual * attention[:, 1:2]
        if x.shape[-1] != out_shape:
            x = F.interpolate(x, (out_shape, out_shape), mode="nearest")
        return self.conv2(x), x


def _levels(feats: Dict, key: str) -> List[torch.Tensor]:
    """A network's ReviewKD levels, shallow to deep: ``feats[key]`` then the pooled feature as a 1×1 map."""
    return list(feats[key]) + [feats["pooled_feat"].unsqueeze(-1).unsqueeze(-1)]


_LEVEL_KEYS = ("SHAPES", "OUT_SHAPES", "IN_CHANNELS", "OUT_CHANNELS")


def _given_levels(cfg) -> Dict[str, List[int]]:
    """The level lists the config states: a value equal to mdistiller's default counts as not given."""
    rc = cfg.REVIEWKD
    return {k: [int(x) for x in rc[k]] for k in _LEVEL_KEYS if [int(x) for x in rc[k]] != list(_C[k])}


def resolve_levels(cfg, s_levels: Sequence[torch.Tensor], t_levels: Sequence[torch.Tensor]) -> Dict[str, List[int]]:
    """SHAPES/OUT_SHAPES/IN_CHANNELS/OUT_CHANNELS for the probed levels: what the models produce, where the
    config leaves a list at mdistiller's default; a list the config gives must equal it (else ConfigError,
    naming the right values)."""
    pair = f"{cfg.DISTILLER.TEACHER} -> {cfg.DISTILLER.STUDENT}"
    given = _given_levels(cfg)
    lengths = {k: len(v) for k, v in given.items()}
    n = next(iter(lengths.values())) if given else len(t_levels)
    if set(lengths.values()) - {n} or n != len(t_levels) or n > len(s_levels):
        raise ConfigError(
            f"REVIEWKD for {pair}: the teacher has {len(t_levels)} levels (preact_feats[1:] + pooled) and the "
            f"student {len(s_levels)}; SHAPES, OUT_SHAPES, IN_CHANNELS and OUT_CHANNELS, where given, must all "
            f"have {len(t_levels)} entries (got {lengths}); leave them at mdistiller's defaults to take the models'"
        )
    s_levels = s_levels[-n:]
    for level in list(s_levels) + list(t_levels):
        if level.shape[-1] != level.shape[-2]:
            raise ConfigError(f"REVIEWKD for {pair}: ABF needs square maps, got {tuple(level.shape[-2:])}")
    expected = {
        "SHAPES": [int(f.shape[-1]) for f in reversed(s_levels)],
        "OUT_SHAPES": [int(f.shape[-1]) for f in reversed(t_levels)],
        "IN_CHANNELS": [int(f.shape[1]) for f in s_levels],
        "OUT_CHANNELS": [int(f.shape[1]) for f in t_levels],
    }
    wrong = {k: v for k, v in expected.items() if k in given and given[k] != v}
    if wrong:
        fix = ", ".join(f"REVIEWKD.{k} {v} (config: {given[k]})" for k, v in wrong.items())
        raise ConfigError(f"REVIEWKD for {pair}: the config does not match the models; set {fix} (or leave them at "
                          f"mdistiller's defaults, which take the models' values)")
    return expected


@register_distiller("REVIEWKD", config=_C)
class ReviewKD(Distiller):
    """Cross-entropy plus the warmed-up HCL between the ABF outputs and the teacher's levels.

    Extra parameters: the ABF modules (``abfs[0]`` serves the deepest level, as upstream's state dict).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        rc = cfg.REVIEWKD
        self.ce_weight, self.reviewkd_weight = rc.CE_WEIGHT, rc.REVIEWKD_WEIGHT
        self.warmup_epochs = rc.WARMUP_EPOCHS
        self.student_key = "preact_feats" if rc.STU_PREACT else "feats"
        size = probe_input_size(cfg)
        feats_s, feats_t = probe_features(student, size)[1], probe_features(teacher, size)[1]
        for role, name, feats, key in (("student", cfg.DISTILLER.STUDENT, feats_s, self.student_key),
                                       ("teacher", cfg.DISTILLER.TEACHER, feats_t, "preact_feats")):
            if not feats.get(key):
                raise ConfigError(f"REVIEWKD cannot use {name} as the {role}: it returns no feats[{key!r}]"
                                 + (" (set REVIEWKD.STU_PREACT False)" if role == "student" else ""))
        levels = resolve_levels(cfg, _levels(feats_s, self.student_key), _levels(feats_t, "preact_feats")[1:])
        self.shapes, self.out_shapes = levels["SHAPES"], levels["OUT_SHAPES"]
        in_channels, out_channels = levels["IN_CHANNELS"], levels["OUT_CHANNELS"]
        mid = min(int(rc.MAX_MID_CHANNEL), int(in_channels[-1]))
        # built shallow to deep (upstream's initialisation order), stored deep first
        abfs = [ABF(c_in, mid, c_out, i < len(in_channels) - 1)
                for i, (c_in, c_out) in enumerate(zip(in_channels, out_channels))]
        self.abfs = nn.ModuleList(abfs[::-1])

    def review(self, student_levels: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """ABF outputs for the student's levels (shallow to deep in, shallow to deep out)."""
        x = list(student_levels)[::-1][: len(self.abfs)]
        out, fused = self.abfs[0](x[0], out_shape=self.out_shapes[0])
        results = [out]
        for feat, abf, shape, out_shape in zip(x[1:], self.abfs[1:], self.shapes[1:], self.out_shapes[1:]):
            out, fused = abf(feat, fused, shape, out_shape)
            results.insert(0, out)
        return results

    def forward_train(self, image, target, epoch=1, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        results = self.review(_levels(feats_student, self.student_key))
        teacher_levels = _levels(feats_teacher, "preact_feats")[1:]
        warm = warmup_factor(epoch, self.warmup_epochs)
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.reviewkd_weight * warm * hcl_loss(results, teacher_levels),
        }
        return logits_student, losses
