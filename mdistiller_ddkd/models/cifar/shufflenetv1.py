"""ShuffleNet V1 (Zhang et al.) for CIFAR: groups=3, stage widths 240-480-960, 4-8-4 blocks."""

from __future__ import annotations

from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ShuffleNetV1", "ShuffleV1", "channel_shuffle"]


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """[N, g*c, H, W] -> [N, c*g, H, W]: interleave the channels of the ``groups`` groups."""
    n, c, h, w = x.size()
    return x.view(n, groups, c // groups, h, w).permute(0, 2, 1, 3, 4).reshape(n, c, h, w)


class ShuffleBlock(nn.Module):
    """Channel shuffle as a module."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)


class Bottleneck(nn.Module):
    """Grouped 1x1 - shuffle - depthwise 3x3 - grouped 1x1; stride-2 blocks concatenate a 3x3
    average-pooled shortcut, others add the identity."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.stride = stride
        mid_planes = int(out_planes / 4)
        g = 1 if in_planes == 24 else groups
        self.conv1 = nn.Conv2d(in_planes, mid_planes, kernel_size=1, groups=g, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.shuffle1 = ShuffleBlock(groups=g)
        self.conv2 = nn.Conv2d(
            mid_planes, mid_planes, kernel_size=3, stride=stride, padding=1, groups=mid_planes, bias=False
        )
        self.bn2 = nn.BatchNorm2d(mid_planes)
        self.conv3 = nn.Conv2d(mid_planes, out_planes, kernel_size=1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.Sequential()
        if stride == 2:
            self.shortcut = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1))

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.shuffle1(out)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = self.shortcut(x)
        preact = torch.cat([out, res], 1) if self.stride == 2 else out + res
        out = F.relu(preact)
        return (out, preact) if self.is_last else out


class ShuffleNetV1(nn.Module):
    """ShuffleNet V1 with a 1x1 stem (24 channels), three stages (each starts with a stride-2 block),
    4x4 average pooling and ``linear``.

    ``feats["feats"]`` = [stem, stage1, stage2, stage3], ``feats["preact_feats"]`` the same before each
    stage's last ReLU, ``feats["pooled_feat"]``.
    """

    def __init__(self, cfg: Dict[str, object], num_classes: int = 10) -> None:
        super().__init__()
        out_planes: List[int] = cfg["out_planes"]  # type: ignore[assignment]
        num_blocks: List[int] = cfg["num_blocks"]  # type: ignore[assignment]
        groups: int = cfg["groups"]  # type: ignore[assignment]
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_planes = 24
        self.layer1 = self._make_layer(out_planes[0], num_blocks[0], groups)
        self.layer2 = self._make_layer(out_planes[1], num_blocks[1], groups)
        self.layer3 = self._make_layer(out_planes[2], num_blocks[2], groups)
        self.linear = nn.Linear(out_planes[2], num_classes)

    def _make_layer(self, out_planes: int, num_blocks: int, groups: int) -> nn.Sequential:
        layers = []
        for i in range(num_blocks):
            stride = 2 if i == 0 else 1
            cat_planes = self.in_planes if i == 0 else 0
            layers.append(
                Bottleneck(self.in_planes, out_planes - cat_planes, stride, groups, is_last=(i == num_blocks - 1))
            )
            self.in_planes = out_planes
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """The stem and the three stages, in order."""
        return nn.ModuleList([self.conv1, self.bn1, self.layer1, self.layer2, self.layer3])

    def get_bn_before_relu(self) -> List[nn.Module]:
        """Not supported (as in mdistiller): ShuffleNetV1 cannot serve as an OFD ("Overhaul") teacher."""
        raise NotImplementedError('ShuffleNetV1 is not supported as an "Overhaul" (OFD) teacher')

    def get_stage_channels(self) -> List[int]:
        """Not offered for ShuffleNetV1 (mdistiller has none); methods that need it cannot use it."""
        raise NotImplementedError("ShuffleNetV1 has no get_stage_channels() (none in mdistiller)")

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        out = F.relu(self.bn1(self.conv1(x)))
        f0 = out
        out, f1_pre = self.layer1(out)
        f1 = out
        out, f2_pre = self.layer2(out)
        f2 = out
        out, f3_pre = self.layer3(out)
        f3 = out
        out = F.avg_pool2d(out, 4)
        avg = out.reshape(out.size(0), -1)
        logits = self.linear(avg)
        feats = {
            "feats": [f0, f1, f2, f3],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre],
            "pooled_feat": avg,
        }
        return logits, feats


def ShuffleV1(num_classes: int = 100) -> ShuffleNetV1:
    """ShuffleNet V1, groups=3, out_planes [240, 480, 960], blocks [4, 8, 4]."""
    cfg = {"out_planes": [240, 480, 960], "num_blocks": [4, 8, 4], "groups": 3}
    return ShuffleNetV1(cfg, num_classes=num_classes)
