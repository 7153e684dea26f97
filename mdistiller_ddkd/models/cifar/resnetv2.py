"""CIFAR variants of ResNet-18 / ResNet-50 (3x3 stem without max-pooling, four stages)."""

from __future__ import annotations

from typing import Dict, List, Tuple, Type, Union

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResNetV2", "ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152"]


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus a (projection) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        preact = out + self.shortcut(x)
        out = F.relu(preact)
        return (out, preact) if self.is_last else out


class Bottleneck(nn.Module):
    """1x1 - 3x3 (strided) - 1x1 bottleneck with expansion 4."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, is_last: bool = False) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        preact = out + self.shortcut(x)
        out = F.relu(preact)
        return (out, preact) if self.is_last else out


class ResNetV2(nn.Module):
    """ResNet with four stages (64-128-256-512 base widths, strides 1, 2, 2, 2) for 32x32 inputs.

    ``forward`` returns ``(logits, feats)``: ``feats["feats"]`` = [stem, stage1..stage4],
    ``feats["preact_feats"]`` the same before each stage's last ReLU, ``feats["pooled_feat"]``.
    """

    def __init__(
        self,
        block: Type[Union[BasicBlock, Bottleneck]],
        num_blocks: List[int],
        num_classes: int = 10,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        self.block = block
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block, planes: int, num_blocks: int, stride: int) -> nn.Sequential:
        strides = [stride] + [1] * (num_blocks - 1)
        layers = []
        for i, s in enumerate(strides):
            layers.append(block(self.in_planes, planes, s, is_last=(i == num_blocks - 1)))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """The stem and the four stages, in order."""
        return nn.ModuleList([self.conv1, self.bn1, self.layer1, self.layer2, self.layer3, self.layer4])

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        """The last BatchNorm of each stage's last block."""
        layers = [self.layer1, self.layer2, self.layer3, self.layer4]
        if self.block is Bottleneck:
            return [layer[-1].bn3 for layer in layers]
        return [layer[-1].bn2 for layer in layers]

    def get_stage_channels(self) -> List[int]:
        """mdistiller's (fixed) stage channels for this family: [256, 512, 1024, 2048], for every depth."""
        return [256, 512, 1024, 2048]

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        out = F.relu(self.bn1(self.conv1(x)))
        f0 = out
        out, f1_pre = self.layer1(out)
        f1 = out
        out, f2_pre = self.layer2(out)
        f2 = out
        out, f3_pre = self.layer3(out)
        f3 = out
        out, f4_pre = self.layer4(out)
        f4 = out
        avg = self.avgpool(out).reshape(out.size(0), -1)
        logits = self.linear(avg)
        feats = {
            "feats": [f0, f1, f2, f3, f4],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre, f4_pre],
            "pooled_feat": avg,
        }
        return logits, feats


def ResNet18(num_classes: int = 100) -> ResNetV2:
    """CIFAR ResNet-18 (BasicBlock, [2, 2, 2, 2])."""
    return ResNetV2(BasicBlock, [2, 2, 2, 2], num_classes=num_classes)


def ResNet34(num_classes: int = 100) -> ResNetV2:
    """CIFAR ResNet-34 (BasicBlock, [3, 4, 6, 3])."""
    return ResNetV2(BasicBlock, [3, 4, 6, 3], num_classes=num_classes)


def ResNet50(num_classes: int = 100) -> ResNetV2:
    """CIFAR ResNet-50 (Bottleneck, [3, 4, 6, 3])."""
    return ResNetV2(Bottleneck, [3, 4, 6, 3], num_classes=num_classes)


def ResNet101(num_classes: int = 100) -> ResNetV2:
    """CIFAR ResNet-101 (Bottleneck, [3, 4, 23, 3])."""
    return ResNetV2(Bottleneck, [3, 4, 23, 3], num_classes=num_classes)


def ResNet152(num_classes: int = 100) -> ResNetV2:
    """CIFAR ResNet-152 (Bottleneck, [3, 8, 36, 3])."""
    return ResNetV2(Bottleneck, [3, 8, 36, 3], num_classes=num_classes)
