"""ShuffleNet V2 (Ma et al.) for CIFAR, net size 1: stage widths 116-232-464, 1x1 head conv to 1024."""

from __future__ import annotations

from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .shufflenetv1 import channel_shuffle

__all__ = ["ShuffleNetV2", "ShuffleV2"]

CONFIGS: Dict[float, Dict[str, Tuple[int, ...]]] = {
    0.2: {"out_channels": (40, 80, 160, 512), "num_blocks": (3, 3, 3)},
    0.3: {"out_channels": (40, 80, 160, 512), "num_blocks": (3, 7, 3)},
    0.5: {"out_channels": (48, 96, 192, 1024), "num_blocks": (3, 7, 3)},
    1: {"out_channels": (116, 232, 464, 1024), "num_blocks": (3, 7, 3)},
    1.5: {"out_channels": (176, 352, 704, 1024), "num_blocks": (3, 7, 3)},
    2: {"out_channels": (224, 488, 976, 2048), "num_blocks": (3, 7, 3)},
}


class ShuffleBlock(nn.Module):
    """Channel shuffle as a module."""

    def __init__(self, groups: int = 2) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)


class SplitBlock(nn.Module):
    """Split the channels at ``ratio``."""

    def __init__(self, ratio: float) -> None:
        super().__init__()
        self.ratio = ratio

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        c = int(x.size(1) * self.ratio)
        return x[:, :c, :, :], x[:, c:, :, :]


class BasicBlock(nn.Module):
    """Keep half the channels, transform the other half (1x1 - dw 3x3 - 1x1), concatenate, shuffle.
    The last block of a stage also returns the concatenation before the final ReLU (unshuffled)."""

    def __init__(self, in_channels: int, split_ratio: float = 0.5, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.split = SplitBlock(split_ratio)
        in_channels = int(in_channels * split_ratio)
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1, groups=in_channels,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(in_channels)
        self.conv3 = nn.Conv2d(in_channels, in_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(in_channels)
        self.shuffle = ShuffleBlock()

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        x1, x2 = self.split(x)
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        pre = self.bn3(self.conv3(out))
        out = torch.cat([x1, F.relu(pre)], 1)
        out = self.shuffle(out)
        if self.is_last:
            return out, torch.cat([x1, pre], 1)
        return out


class DownBlock(nn.Module):
    """Stride-2 block: both branches see the whole input, each yields half of ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        # left branch
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=1, groups=in_channels,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        # right branch
        self.conv3 = nn.Conv2d(in_channels, mid, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, kernel_size=3, stride=2, padding=1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, kernel_size=1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)
        self.shuffle = ShuffleBlock()

    def forward(self, x: Tensor) -> Tensor:
        left = self.bn1(self.conv1(x))
        left = F.relu(self.bn2(self.conv2(left)))
        right = F.relu(self.bn3(self.conv3(x)))
        right = self.bn4(self.conv4(right))
        right = F.relu(self.bn5(self.conv5(right)))
        return self.shuffle(torch.cat([left, right], 1))


class ShuffleNetV2(nn.Module):
    """ShuffleNet V2 with a 1x1 stem (24 channels), three stages, a 1x1 conv to the head width, 4x4
    average pooling and ``linear``.

    ``feats["feats"]`` = [stem, stage1, stage2, stage3]; ``feats["preact_feats"]`` the same before each
    stage's last ReLU; ``feats["pooled_feat"]`` the pooled head vector (1024-d for net size 1).
    """

    def __init__(self, net_size: float, num_classes: int = 10) -> None:
        super().__init__()
        out_channels = CONFIGS[net_size]["out_channels"]
        num_blocks = CONFIGS[net_size]["num_blocks"]
        self.conv1 = nn.Conv2d(3, 24, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        self.in_channels = 24
        self.layer1 = self._make_layer(out_channels[0], num_blocks[0])
        self.layer2 = self._make_layer(out_channels[1], num_blocks[1])
        self.layer3 = self._make_layer(out_channels[2], num_blocks[2])
        self.conv2 = nn.Conv2d(out_channels[2], out_channels[3], kernel_size=1, stride=1, padding=0, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)
        self.stage_channels = [24] + list(out_channels[:-1])

    def _make_layer(self, out_channels: int, num_blocks: int) -> nn.Sequential:
        layers: List[nn.Module] = [DownBlock(self.in_channels, out_channels)]
        for i in range(num_blocks):
            layers.append(BasicBlock(out_channels, is_last=(i == num_blocks - 1)))
            self.in_channels = out_channels
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """The stem and the three stages, in order."""
        return nn.ModuleList([self.conv1, self.bn1, self.layer1, self.layer2, self.layer3])

    def get_bn_before_relu(self) -> List[nn.Module]:
        """Not supported (as in mdistiller): ShuffleNetV2 cannot serve as an OFD ("Overhaul") teacher."""
        raise NotImplementedError('ShuffleNetV2 is not supported as an "Overhaul" (OFD) teacher')

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``: [24, 116, 232, 464]."""
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        out = F.relu(self.bn1(self.conv1(x)))
        f0 = out
        out, f1_pre = self.layer1(out)
        f1 = out
        out, f2_pre = self.layer2(out)
        f2 = out
        out, f3_pre = self.layer3(out)
        f3 = out
        out = F.relu(self.bn2(self.conv2(out)))
        out = F.avg_pool2d(out, 4)
        avg = out.reshape(out.size(0), -1)
        logits = self.linear(avg)
        feats = {
            "feats": [f0, f1, f2, f3],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre],
            "pooled_feat": avg,
        }
        return logits, feats


def ShuffleV2(num_classes: int = 100) -> ShuffleNetV2:
    """ShuffleNet V2, net size 1 (out channels [116, 232, 464, 1024], blocks [3, 7, 3])."""
    return ShuffleNetV2(net_size=1, num_classes=num_classes)
