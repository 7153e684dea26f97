"""NST: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer" (2017), as
mdistiller runs it.

Loss: ``CE_WEIGHT * CE + FEAT_WEIGHT * Σ_stages MMD²_poly(student map, teacher map)`` over the stage outputs
after the stem (see :mod:`~mdistiller_ddkd.distillers._stages`); each channel is one sample of the
distribution, so channel counts may differ, and a larger map is average-pooled to the smaller size — every
pair of Tables 2/3 is served. No extra parameters. Maths: :mod:`mdistiller_ddkd.losses.mmd`.
"""

from __future__ import annotations

from yacs.config import CfgNode as CN

from ..losses.mmd import nst_loss
from ._stages import StageMapDistiller
from .registry import register_distiller

_C = CN()
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 50.0


@register_distiller("NST", config=_C)
class NST(StageMapDistiller):
    """Cross-entropy plus neuron-selectivity transfer (polynomial-kernel MMD) on every stage after the stem."""

    config_key = "NST"

    def stage_loss(self, maps_student, maps_teacher):
        return nst_loss(maps_student, maps_teacher)
