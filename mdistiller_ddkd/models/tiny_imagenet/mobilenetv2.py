"""mdistiller's MobileNetV2 for Tiny-ImageNet (``mv2_tinyimagenet.py``): full width, a 1x1 stem with
padding 1 (64x64 -> 66x66), stages with strides 1, 2, 2, 2, 1, 1, 1, a 1x1 conv to 1280 channels and a 1x1
conv classifier. Module names, order and shapes are upstream's, so its state dicts load unchanged."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LinearBottleNeck", "MobileNetV2Tiny", "mobilenetv2_tinyimagenet"]

#: (blocks, out channels, stride of the first block, expansion) of stages 2-6 (stage 1 and 7 are one block)
STAGES: Tuple[Tuple[int, int, int, int], ...] = ((2, 24, 2, 6), (3, 32, 2, 6), (4, 64, 2, 6), (3, 96, 1, 6),
                                                 (3, 160, 1, 6))


class LinearBottleNeck(nn.Module):
    """1x1 expand (ReLU6) - 3x3 depthwise (ReLU6) - 1x1 linear projection, all convs with bias; identity
    shortcut when the stride is 1 and the widths agree."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, t: int = 6) -> None:
        super().__init__()
        hidden = in_channels * t
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, out_channels, 1), nn.BatchNorm2d(out_channels),
        )
        self.shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.residual(x)
        return out + x if self.shortcut else out


def _stage(repeat: int, in_channels: int, out_channels: int, stride: int, t: int) -> nn.Sequential:
    blocks = [LinearBottleNeck(in_channels, out_channels, stride, t)]
    blocks += [LinearBottleNeck(out_channels, out_channels, 1, t) for _ in range(repeat - 1)]
    return nn.Sequential(*blocks)


class MobileNetV2Tiny(nn.Module):
    """``forward`` returns ``(logits, feats)``: ``feats["feats"]`` = [stem, after stage 2, after stage 3,
    after stage 4, after the 1280-channel conv] (66, 33, 17, 9, 9 pixels a side for 64x64 inputs);
    ``feats["pooled_feat"]`` the pooled 1280-d vector (flattened; upstream keeps it (N, 1280, 1, 1)).
    There are no ``preact_feats``."""

    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        self.pre = nn.Sequential(nn.Conv2d(3, 32, 1, padding=1), nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        self.stage1 = LinearBottleNeck(32, 16, 1, 1)
        in_channels = 16
        for index, (repeat, out_channels, stride, t) in enumerate(STAGES, start=2):
            setattr(self, f"stage{index}", _stage(repeat, in_channels, out_channels, stride, t))
            in_channels = out_channels
        self.stage7 = LinearBottleNeck(in_channels, 320, 1, 6)
        self.conv1 = nn.Sequential(nn.Conv2d(320, 1280, 1), nn.BatchNorm2d(1280), nn.ReLU6(inplace=True))
        self.conv2 = nn.Conv2d(1280, num_classes, 1)

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``: [32, 24, 32, 64, 1280]."""
        return [32, STAGES[0][1], STAGES[1][1], STAGES[2][1], 1280]

    def get_bn_before_relu(self) -> List[nn.Module]:
        """Not available (upstream's Tiny-ImageNet MobileNetV2 has none): no OFD teacher."""
        raise NotImplementedError("the Tiny-ImageNet MobileNetV2 is not supported as an OFD teacher")

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        f0 = self.pre(x)
        f1 = self.stage2(self.stage1(f0))
        f2 = self.stage3(f1)
        f3 = self.stage4(f2)
        f4 = self.conv1(self.stage7(self.stage6(self.stage5(f3))))
        pooled = F.adaptive_avg_pool2d(f4, 1)
        logits = self.conv2(pooled).flatten(1)
        return logits, {"feats": [f0, f1, f2, f3, f4], "pooled_feat": pooled.flatten(1)}


def mobilenetv2_tinyimagenet(num_classes: int = 200) -> MobileNetV2Tiny:
    """mdistiller's ``mobilenetv2_tinyimagenet``."""
    return MobileNetV2Tiny(num_classes=num_classes)
