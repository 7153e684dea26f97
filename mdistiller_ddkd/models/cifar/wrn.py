"""Wide residual networks (Zagoruyko & Komodakis) for CIFAR: wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from .init import init_fan_out_normal

__all__ = ["WideResNet", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2"]


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, with a 1x1 projection shortcut
    (applied to the activated input) when the width changes."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.droprate = drop_rate
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = (
            None
            if self.equal_in_out
            else nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        act = F.relu(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.droprate > 0:
            out = F.dropout(out, p=self.droprate, training=self.training)
        out = self.conv2(out)
        shortcut = x if self.equal_in_out else self.convShortcut(act)
        return shortcut + out


class NetworkBlock(nn.Module):
    """A stage of ``nb_layers`` blocks; the first one may change width and stride."""

    def __init__(
        self, nb_layers: int, in_planes: int, out_planes: int, block, stride: int, drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.layer = nn.Sequential(
            *[
                block(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, drop_rate)
                for i in range(int(nb_layers))
            ]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-k: a 3x3 stem, three stages of widths 16k, 32k, 64k, BN-ReLU, 8x8 average pooling.

    ``feats["feats"]`` = [stem, stage1, stage2, stage3] (stage outputs are pre-activation, as the
    blocks are); ``feats["preact_feats"]`` = [stem, BN of each stage output that precedes the next
    ReLU]; ``feats["pooled_feat"]`` the pooled vector after the final BN-ReLU.
    """

    def __init__(self, depth: int, num_classes: int, widen_factor: int = 1, drop_rate: float = 0.0) -> None:
        super().__init__()
        n_channels = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        assert (depth - 4) % 6 == 0, "depth should be 6n+4"
        n = (depth - 4) // 6
        self.conv1 = nn.Conv2d(3, n_channels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, n_channels[0], n_channels[1], BasicBlock, 1, drop_rate)
        self.block2 = NetworkBlock(n, n_channels[1], n_channels[2], BasicBlock, 2, drop_rate)
        self.block3 = NetworkBlock(n, n_channels[2], n_channels[3], BasicBlock, 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(n_channels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(n_channels[3], num_classes)
        self.nChannels = n_channels[3]
        self.stage_channels = n_channels

        init_fan_out_normal(self, linear_std=None)

    def get_feat_modules(self) -> nn.ModuleList:
        """The stem and the three stages, in order."""
        return nn.ModuleList([self.conv1, self.block1, self.block2, self.block3])

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        """The BatchNorms that normalise each stage output before the next ReLU."""
        return [self.block2.layer[0].bn1, self.block3.layer[0].bn1, self.bn1]

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``: [16, 16k, 32k, 64k]."""
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        out = self.conv1(x)
        f0 = out
        out = self.block1(out)
        f1 = out
        out = self.block2(out)
        f2 = out
        out = self.block3(out)
        f3 = out
        out = self.relu(self.bn1(out))
        out = F.avg_pool2d(out, 8)
        avg = out.reshape(-1, self.nChannels)
        logits = self.fc(avg)
        f1_pre = self.block2.layer[0].bn1(f1)
        f2_pre = self.block3.layer[0].bn1(f2)
        f3_pre = self.bn1(f3)
        feats = {
            "feats": [f0, f1, f2, f3],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre],
            "pooled_feat": avg,
        }
        return logits, feats


def wrn_16_1(num_classes: int = 100) -> WideResNet:
    """WRN-16-1."""
    return WideResNet(depth=16, num_classes=num_classes, widen_factor=1)


def wrn_16_2(num_classes: int = 100) -> WideResNet:
    """WRN-16-2."""
    return WideResNet(depth=16, num_classes=num_classes, widen_factor=2)


def wrn_40_1(num_classes: int = 100) -> WideResNet:
    """WRN-40-1."""
    return WideResNet(depth=40, num_classes=num_classes, widen_factor=1)


def wrn_40_2(num_classes: int = 100) -> WideResNet:
    """WRN-40-2."""
    return WideResNet(depth=40, num_classes=num_classes, widen_factor=2)
