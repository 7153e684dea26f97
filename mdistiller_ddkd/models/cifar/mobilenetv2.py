"""MobileNetV2 for CIFAR (Sandler et al.) as used by CRD/mdistiller; ``MobileNetV2`` in the registry is the
half-width model (width 0.5, expansion T=6), a.k.a. ``mobile_half``."""

from __future__ import annotations

from typing import Dict, List, Tuple

from torch import Tensor, nn

from .init import init_fan_out_normal

__all__ = ["MobileNetV2Net", "mobilenetv2_T_w", "mobile_half", "MobileNetV2"]


def _conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True)
    )


def _conv_1x1_bn(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True)
    )


class InvertedResidual(nn.Module):
    """Pointwise expansion, 3x3 depthwise, linear pointwise projection; identity residual when the
    stride is 1 and the width is unchanged."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        assert stride in (1, 2)
        self.use_res_connect = stride == 1 and inp == oup
        hidden = inp * expand_ratio
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Net(nn.Module):
    """MobileNetV2 for 32x32 inputs (stem stride 2, stages with strides 1,1,2,2,1,2,1).

    ``feats["feats"]`` = [stem, after stage 1, after stage 2, after stage 4, after stage 6] (the last is
    the feature map before the final 1x1 conv); ``feats["pooled_feat"]`` the pooled 1280-d vector.
    There are no ``preact_feats``.
    """

    def __init__(
        self,
        T: int,
        feature_dim: int,
        input_size: int = 32,
        width_mult: float = 1.0,
        remove_avg: bool = False,
    ) -> None:
        super().__init__()
        self.remove_avg = remove_avg
        # t (expansion), c (channels), n (repeats), s (stride of the first block)
        settings = [
            [1, 16, 1, 1],
            [T, 24, 2, 1],
            [T, 32, 3, 2],
            [T, 64, 4, 2],
            [T, 96, 3, 1],
            [T, 160, 3, 2],
            [T, 320, 1, 1],
        ]
        assert input_size % 32 == 0
        input_channel = int(32 * width_mult)
        self.conv1 = _conv_bn(3, input_channel, 2)
        self.blocks = nn.ModuleList([])
        for t, c, n, s in settings:
            output_channel = int(c * width_mult)
            layers = []
            for i in range(n):
                layers.append(InvertedResidual(input_channel, output_channel, s if i == 0 else 1, t))
                input_channel = output_channel
            self.blocks.append(nn.Sequential(*layers))
        self.last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_1x1_bn(input_channel, self.last_channel)
        self.classifier = nn.Sequential(nn.Linear(self.last_channel, feature_dim))
        h = input_size // (32 // 2)
        self.avgpool = nn.AvgPool2d(h, ceil_mode=True)
        self.stage_channels = [
            int(32 * width_mult),
            int(24 * width_mult),
            int(32 * width_mult),
            int(96 * width_mult),
            int(320 * width_mult),
        ]
        init_fan_out_normal(self)

    def get_feat_modules(self) -> nn.ModuleList:
        """The stem and the block stages, in order."""
        return nn.ModuleList([self.conv1, self.blocks])

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        """The projection BatchNorm closing stages 1, 2, 4 and 6 (the ``feats`` taps)."""
        return [
            self.blocks[1][-1].conv[-1],
            self.blocks[2][-1].conv[-1],
            self.blocks[4][-1].conv[-1],
            self.blocks[6][-1].conv[-1],
        ]

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]`` (``[16, 12, 16, 48, 160]`` at width 0.5)."""
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        out = self.conv1(x)
        f0 = out
        out = self.blocks[0](out)
        out = self.blocks[1](out)
        f1 = out
        out = self.blocks[2](out)
        f2 = out
        out = self.blocks[3](out)
        out = self.blocks[4](out)
        f3 = out
        out = self.blocks[5](out)
        out = self.blocks[6](out)
        f4 = out
        out = self.conv2(out)
        if not self.remove_avg:
            out = self.avgpool(out)
        avg = out.reshape(out.size(0), -1)
        logits = self.classifier(avg)
        feats = {"feats": [f0, f1, f2, f3, f4], "pooled_feat": avg}
        return logits, feats


def mobilenetv2_T_w(T: int, W: float, feature_dim: int = 100) -> MobileNetV2Net:
    """MobileNetV2 with expansion ``T`` and width multiplier ``W``."""
    return MobileNetV2Net(T=T, feature_dim=feature_dim, width_mult=W)


def mobile_half(num_classes: int = 100) -> MobileNetV2Net:
    """Half-width MobileNetV2 (T=6, width 0.5)."""
    return mobilenetv2_T_w(6, 0.5, num_classes)


def MobileNetV2(num_classes: int = 100) -> MobileNetV2Net:
    """The registry's ``MobileNetV2``: the half-width model (same as :func:`mobile_half`)."""
    return mobile_half(num_classes)
