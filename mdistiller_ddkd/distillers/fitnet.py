"""FitNet: Romero et al., "FitNets: Hints for Thin Deep Nets" (ICLR 2015).

The student's feature at stage ``FITNET.HINT_LAYER`` (its "hint" layer, ``feats["feats"][HINT_LAYER]``) is
mapped by a learned regressor to the shape of the teacher's feature at the same stage and pulled towards it
with a mean squared error. The regressor is the one FitNet was benchmarked with (mdistiller's and the CRD
code's ``ConvReg``): a convolution WITH bias, then BatchNorm, then ReLU (the teacher's stage outputs are
post-ReLU). The convolution depends on the student map (Hs, Ws) versus the teacher's (Ht, Wt):

- student map twice as large: 3×3 convolution, stride 2, padding 1;
- student map half as large (wrn_40_2/resnet32x4/ResNet50 teachers vs. ShuffleV1/MobileNetV2 students):
  4×4 transposed convolution, stride 2, padding 1 (a learned ×2 upsampling);
- otherwise at least as large: a ``(1 + Hs - Ht) × (1 + Ws - Wt)`` convolution without padding (equal
  sizes: a 1×1 convolution);
- otherwise (smaller by a ratio other than 2, where upstream raises): bilinear resizing to the teacher's
  size, then the 1×1 convolution — this package's fallback.

Upstream compares heights only; here both height and width decide (identical on square maps).
The spatial and channel sizes come from a dummy forward of both networks on the dataset's image size at
construction (see :func:`~mdistiller_ddkd.distillers.base.probe_features`).
"""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from ..losses.feature import fitnet_loss
from .base import Distiller, probe_features, probe_input_size
from .registry import register_distiller

_C = CN()
_C.HINT_LAYER = 2
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 100.0


class HintRegressor(nn.Module):
    """Maps a (C_s, H_s, W_s) student feature to the teacher's (C_t, H_t, W_t): conv (with bias) + BN + ReLU;
    ``kind`` names the convolution chosen for the spatial ratio (see the module docstring)."""

    def __init__(self, student_shape: Tuple[int, int, int], teacher_shape: Tuple[int, int, int]) -> None:
        super().__init__()
        c_s, h_s, w_s = student_shape
        c_t, h_t, w_t = teacher_shape
        self.target_size = (h_t, w_t)
        if (h_s, w_s) == (2 * h_t, 2 * w_t):
            self.kind = "conv3x3_stride2"
            self.conv: nn.Module = nn.Conv2d(c_s, c_t, 3, stride=2, padding=1)
        elif (2 * h_s, 2 * w_s) == (h_t, w_t):
            self.kind = "transposed4x4_stride2"
            self.conv = nn.ConvTranspose2d(c_s, c_t, 4, stride=2, padding=1)
        elif h_s >= h_t and w_s >= w_t:
            self.kind = "conv_valid"
            self.conv = nn.Conv2d(c_s, c_t, (1 + h_s - h_t, 1 + w_s - w_t))
        else:
            self.kind = "resize_conv1x1"
            self.conv = nn.Conv2d(c_s, c_t, 1)
        self.bn = nn.BatchNorm2d(c_t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "resize_conv1x1":
            x = F.interpolate(x, size=self.target_size, mode="bilinear", align_corners=False)
        return F.relu(self.bn(self.conv(x)))


@register_distiller("FITNET", config=_C)
class FitNet(Distiller):
    """Cross-entropy plus ``FEAT_WEIGHT * MSE(regressor(student hint), teacher hint)``.

    Extra parameters: the regressor's convolution (weight and bias) and BatchNorm.
    """

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        self.ce_weight = cfg.FITNET.LOSS.CE_WEIGHT
        self.feat_weight = cfg.FITNET.LOSS.FEAT_WEIGHT
        self.hint_layer = int(cfg.FITNET.HINT_LAYER)
        size = probe_input_size(cfg)
        feat_s = probe_features(student, size)[1]["feats"]
        feat_t = probe_features(teacher, size)[1]["feats"]
        for name, feats in (("student", feat_s), ("teacher", feat_t)):
            if not -len(feats) <= self.hint_layer < len(feats):
                raise ConfigError(f"FITNET.HINT_LAYER {self.hint_layer} out of range: the {name} has "
                                 f"{len(feats)} stages")
        self.regressor = HintRegressor(
            tuple(feat_s[self.hint_layer].shape[1:]), tuple(feat_t[self.hint_layer].shape[1:])
        )

    def forward_train(self, image, target, **kwargs):
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        hint = self.regressor(feats_student["feats"][self.hint_layer])
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * fitnet_loss(hint, feats_teacher["feats"][self.hint_layer]),
        }
        return logits_student, losses
