"""VID: Ahn et al., "Variational Information Distillation for Knowledge Transfer" (CVPR 2019).

For every intermediate stage pair ``(feats_s[i], feats_t[i])``, ``i = 1 .. n-1`` (mdistiller's pairing:
all stage outputs but the stem), the teacher feature is modelled as a Gaussian
``N(μ(s), diag(σ²))``: ``μ`` is three 1×1 convolutions without bias (as benchmarked), with ReLUs in between
(hidden width = the teacher's channels), applied to the student feature; ``σ²_c = softplus(α_c) + VID.EPS``
is one learned variance per teacher channel, initialised to ``VID.INIT_PRED_VAR`` (``α_c = log(exp(
INIT_PRED_VAR - EPS) - 1)``) and trained with everything else, as in the authors' VID code. The loss is
the negative log-likelihood, summed over stages. Cross-family pairs whose maps differ in size are aligned
by adaptive average pooling of the larger map down to the smaller one (the teacher's target is pooled when
the teacher's map is larger).
Shapes come from a dummy forward on the dataset's image size at construction.
"""

from __future__ import annotations

import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from ..losses.feature import vid_loss
from .base import Distiller, probe_features, probe_input_size
from .registry import register_distiller

_C = CN()
_C.EPS = 1e-5
_C.INIT_PRED_VAR = 5.0
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 1.0


class VIDRegressor(nn.Module):
    """Predicts the per-position mean of the teacher feature from the student feature, and holds the
    per-channel variance parameters."""

    def __init__(self, in_channels: int, out_channels: int, init_pred_var: float, eps: float) -> None:
        super().__init__()
        hidden = out_channels
        self.mean = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
        )
        self.eps = eps
        if init_pred_var <= eps:
            raise ConfigError(f"VID.INIT_PRED_VAR ({init_pred_var}) must exceed VID.EPS ({eps}): the variance is "
                             f"softplus(alpha) + EPS")
        # softplus(alpha) + eps == init_pred_var at the start (upstream's log(exp(v - eps) - 1)). An nn.Parameter
        # of this module, so it is optimised: mdistiller keeps these in a plain Python list that its
        # get_learnable_parameters() never returns, so its variances stay frozen at the initial value — an
        # upstream bug not copied here (the original VID code trains them).
        alpha0 = math.log(math.expm1(init_pred_var - eps))
        self.alpha = nn.Parameter(torch.full((out_channels,), alpha0))

    def variance(self) -> torch.Tensor:
        return F.softplus(self.alpha) + self.eps

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.mean(x), self.variance()


def align_spatial(feat_s: torch.Tensor, feat_t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool whichever of the two maps is larger to the other's spatial size."""
    hs, ws = feat_s.shape[-2:]
    ht, wt = feat_t.shape[-2:]
    if (hs, ws) == (ht, wt):
        return feat_s, feat_t
    size = (min(hs, ht), min(ws, wt))
    if (hs, ws) != size:
        feat_s = F.adaptive_avg_pool2d(feat_s, size)
    if (ht, wt) != size:
        feat_t = F.adaptive_avg_pool2d(feat_t, size)
    return feat_s, feat_t


@register_distiller("VID", config=_C)
class VID(Distiller):
    """Cross-entropy plus ``FEAT_WEIGHT * Σ_stages`` VID negative log-likelihood.

    Extra parameters: one :class:`VIDRegressor` per stage pair (three bias-free 1×1 convs plus one
    variance parameter per teacher channel).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.VID.LOSS.CE_WEIGHT
        self.feat_weight = cfg.VID.LOSS.FEAT_WEIGHT
        size = probe_input_size(cfg)
        feat_s = probe_features(student, size)[1]["feats"]
        feat_t = probe_features(teacher, size)[1]["feats"]
        self.num_pairs = min(len(feat_s), len(feat_t)) - 1
        if self.num_pairs < 1:
            raise ConfigError("VID needs at least two stages in both networks")
        self.regressors = nn.ModuleList(
            VIDRegressor(s.shape[1], t.shape[1], cfg.VID.INIT_PRED_VAR, cfg.VID.EPS)
            for s, t in zip(feat_s[1 : 1 + self.num_pairs], feat_t[1 : 1 + self.num_pairs])
        )

    def stage_pairs(self, feats_s: List[torch.Tensor], feats_t: List[torch.Tensor]):
        """The ``(student, teacher)`` feature pairs VID distills, stem excluded."""
        return list(zip(feats_s[1 : 1 + self.num_pairs], feats_t[1 : 1 + self.num_pairs]))

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        loss_vid = 0.0
        for regressor, (s, t) in zip(self.regressors, self.stage_pairs(feats_student["feats"], feats_teacher["feats"])):
            s, t = align_spatial(s, t)
            mean, variance = regressor(s)
            loss_vid = loss_vid + vid_loss(mean.float(), variance.float(), t.float())  # fp32 under AMP
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * loss_vid,
        }
        return logits_student, losses
