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

from torch import nn
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from ..losses.svd import kdsvd_loss
from ._stages import StageMapDistiller
from .registry import register_distiller

_C = CN()
_C.K = 1
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 1.0


@register_distiller("KDSVD", config=_C)
class KDSVD(StageMapDistiller):
    """Cross-entropy plus SVD-based transfer of the relations between consecutive stages."""

    config_key = "KDSVD"
    min_stage_pairs = 2

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        self.k = int(cfg.KDSVD.K)
        if self.k < 1:
            raise ConfigError(f"KDSVD.K must be >= 1 (teacher singular vectors kept), got {cfg.KDSVD.K}")
        super().__init__(student, teacher, cfg)

    def check_stages(self, cfg, shapes_student, shapes_teacher) -> None:
        widths_s, widths_t = [s[2] for s in shapes_student], [t[2] for t in shapes_teacher]
        if widths_s != widths_t:
            raise ConfigError(
                f"KDSVD cannot serve {cfg.DISTILLER.TEACHER} -> {cfg.DISTILLER.STUDENT}: it compares singular "
                f"vectors stage by stage and needs equal map widths, but the student's stages are {widths_s} wide "
                f"and the teacher's {widths_t}; use AT, NST or SP (which pool the larger map) or FITNET instead"
            )

    def stage_loss(self, maps_student, maps_teacher):
        return kdsvd_loss(maps_student, maps_teacher, self.k)
