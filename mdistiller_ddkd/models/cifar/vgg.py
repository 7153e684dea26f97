"""VGG with BatchNorm for CIFAR (five conv stages, max-pooling between stages, one linear head)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from .init import init_fan_out_normal

__all__ = ["VGG", "vgg8", "vgg11", "vgg13", "vgg16", "vgg19"]

# channels of the 3x3 convolutions of each of the five stages
CFG: Dict[str, List[List[int]]] = {
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
    "S": [[64], [128], [256], [512], [512]],
}


def _make_stage(channels: List[int], batch_norm: bool, in_channels: int) -> nn.Sequential:
    """conv3x3(+BN)+ReLU per entry; the stage's final ReLU is left out (applied in ``forward``)."""
    layers: List[nn.Module] = []
    for v in channels:
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers[:-1])


class VGG(nn.Module):
    """CIFAR VGG: stages block0..block4, 2x2 max-pooling after stages 0-2 (and after stage 3 for 64x64
    inputs), global average pooling and ``classifier = Linear(512, num_classes)``.

    ``feats["feats"]`` = the five stage outputs after ReLU; ``feats["preact_feats"]`` = [stage0 (after
    ReLU), then stages 1-4 before their last ReLU]; ``feats["pooled_feat"]`` the 512-d pooled vector.
    """

    def __init__(self, cfg: List[List[int]], batch_norm: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        self.block0 = _make_stage(cfg[0], batch_norm, 3)
        self.block1 = _make_stage(cfg[1], batch_norm, cfg[0][-1])
        self.block2 = _make_stage(cfg[2], batch_norm, cfg[1][-1])
        self.block3 = _make_stage(cfg[3], batch_norm, cfg[2][-1])
        self.block4 = _make_stage(cfg[4], batch_norm, cfg[3][-1])
        self.pool0 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool1 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool2 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool3 = nn.MaxPool2d(kernel_size=2, stride=2)
        self.pool4 = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(512, num_classes)
        self.stage_channels = [c[-1] for c in cfg]
        init_fan_out_normal(self)

    def get_feat_modules(self) -> nn.ModuleList:
        """Stages and pools in forward order."""
        return nn.ModuleList(
            [self.block0, self.pool0, self.block1, self.pool1, self.block2, self.pool2,
             self.block3, self.pool3, self.block4]
        )

    def get_bn_before_relu(self) -> List[nn.Module]:
        """The last BatchNorm of stages 1-4."""
        return [self.block1[-1], self.block2[-1], self.block3[-1], self.block4[-1]]

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``: [64, 128, 256, 512, 512]."""
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        h = x.shape[2]
        x = F.relu(self.block0(x))
        f0 = x
        x = self.pool0(x)
        x = self.block1(x)
        f1_pre = x
        x = F.relu(x)
        f1 = x
        x = self.pool1(x)
        x = self.block2(x)
        f2_pre = x
        x = F.relu(x)
        f2 = x
        x = self.pool2(x)
        x = self.block3(x)
        f3_pre = x
        x = F.relu(x)
        f3 = x
        if h == 64:
            x = self.pool3(x)
        x = self.block4(x)
        f4_pre = x
        x = F.relu(x)
        f4 = x
        avg = self.pool4(x).reshape(x.size(0), -1)
        logits = self.classifier(avg)
        feats = {
            "feats": [f0, f1, f2, f3, f4],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre, f4_pre],
            "pooled_feat": avg,
        }
        return logits, feats


def vgg8(num_classes: int = 100) -> VGG:
    """VGG-8 with BatchNorm (one conv per stage)."""
    return VGG(CFG["S"], batch_norm=True, num_classes=num_classes)


def vgg11(num_classes: int = 100) -> VGG:
    """VGG-11 with BatchNorm (configuration A)."""
    return VGG(CFG["A"], batch_norm=True, num_classes=num_classes)


def vgg13(num_classes: int = 100) -> VGG:
    """VGG-13 with BatchNorm (configuration B)."""
    return VGG(CFG["B"], batch_norm=True, num_classes=num_classes)


def vgg16(num_classes: int = 100) -> VGG:
    """VGG-16 with BatchNorm (configuration D)."""
    return VGG(CFG["D"], batch_norm=True, num_classes=num_classes)


def vgg19(num_classes: int = 100) -> VGG:
    """VGG-19 with BatchNorm (configuration E)."""
    return VGG(CFG["E"], batch_norm=True, num_classes=num_classes)
