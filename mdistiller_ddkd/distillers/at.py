"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention" (ICLR 2017), as mdistiller runs it.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * Σ_stages at_stage_loss(student map, teacher map, P)`` over the stage
outputs after the stem (see :mod:`~mdistiller_ddkd.distillers._stages`); the attention maps are channel
means, so any channel counts work, and a larger map is average-pooled to the smaller size — every pair of
Tables 2/3 is served. No extra parameters. Maths: :mod:`mdistiller_ddkd.losses.attention`.
"""

from __future__ import annotations

from torch import nn
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from ..losses.attention import at_loss
from ._stages import StageMapDistiller
from .registry import register_distiller

_C = CN()
_C.P = 2
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 1000.0


@register_distiller("AT", config=_C)
class AT(StageMapDistiller):
    """Cross-entropy plus attention transfer on every stage after the stem."""

    config_key = "AT"

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        self.p = cfg.AT.P
        if self.p <= 0:
            raise ConfigError(f"AT.P must be positive (the power of the attention map), got {self.p}")
        super().__init__(student, teacher, cfg)

    def stage_loss(self, maps_student, maps_teacher):
        return at_loss(maps_student, maps_teacher, self.p)
