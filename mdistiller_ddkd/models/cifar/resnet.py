"""CIFAR ResNets of the CRD/mdistiller zoo: resnet8 ... resnet110 (16-16-32-64 channels) and the 4x wider
resnet8x4 / resnet32x4 (32-64-128-256 channels)."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple, Type, Union

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ResNet",
    "resnet8",
    "resnet14",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet8x4",
    "resnet32x4",
]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection; the last block of a stage also returns
    its pre-ReLU output."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        is_last: bool = False,
    ) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        preact = out + identity
        out = F.relu(preact)
        return (out, preact) if self.is_last else out


class Bottleneck(nn.Module):
    """1x1 - 3x3 - 1x1 bottleneck with expansion 4 (for depths 9n+2)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Optional[nn.Module] = None,
        is_last: bool = False,
    ) -> None:
        super().__init__()
        self.is_last = is_last
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        preact = out + identity
        out = F.relu(preact)
        return (out, preact) if self.is_last else out


class ResNet(nn.Module):
    """CIFAR ResNet: a 3x3 stem, three stages (strides 1, 2, 2), 8x8 average pooling and a linear head.

    ``forward`` returns ``(logits, feats)`` with ``feats["feats"]`` = [stem, stage1, stage2, stage3],
    ``feats["preact_feats"]`` the same before each stage's last ReLU and ``feats["pooled_feat"]``.
    """

    def __init__(
        self,
        depth: int,
        num_filters: List[int],
        block_name: str = "basicblock",
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        block: Type[Union[BasicBlock, Bottleneck]]
        if block_name.lower() == "basicblock":
            assert (depth - 2) % 6 == 0, "depth should be 6n+2 for BasicBlock, e.g. 20, 32, 44, 56, 110"
            n = (depth - 2) // 6
            block = BasicBlock
        elif block_name.lower() == "bottleneck":
            assert (depth - 2) % 9 == 0, "depth should be 9n+2 for Bottleneck, e.g. 20, 29, 47, 56, 110"
            n = (depth - 2) // 9
            block = Bottleneck
        else:
            raise ValueError(f"block_name must be 'basicblock' or 'bottleneck', got {block_name!r}")
        self.block = block
        self.num_filters = list(num_filters)
        self.inplanes = num_filters[0]
        self.conv1 = nn.Conv2d(3, num_filters[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, num_filters[1], n)
        self.layer2 = self._make_layer(block, num_filters[2], n, stride=2)
        self.layer3 = self._make_layer(block, num_filters[3], n, stride=2)
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(num_filters[3] * block.expansion, num_classes)
        self.stage_channels = list(num_filters)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, is_last=(blocks == 1))]
        self.inplanes = planes * block.expansion
        for i in range(1, blocks):
            layers.append(block(self.inplanes, planes, is_last=(i == blocks - 1)))
        return nn.Sequential(*layers)

    def get_feat_modules(self) -> nn.ModuleList:
        """The stem and the three stages, in order."""
        return nn.ModuleList([self.conv1, self.bn1, self.relu, self.layer1, self.layer2, self.layer3])

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        """The last BatchNorm of each stage's last block (before the residual sum and ReLU)."""
        if self.block is Bottleneck:
            return [self.layer1[-1].bn3, self.layer2[-1].bn3, self.layer3[-1].bn3]
        return [self.layer1[-1].bn2, self.layer2[-1].bn2, self.layer3[-1].bn2]

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``: [stem, stage1, stage2, stage3]."""
        return list(self.stage_channels)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        x = self.relu(self.bn1(self.conv1(x)))
        f0 = x
        x, f1_pre = self.layer1(x)
        f1 = x
        x, f2_pre = self.layer2(x)
        f2 = x
        x, f3_pre = self.layer3(x)
        f3 = x
        avg = self.avgpool(x).reshape(x.size(0), -1)
        logits = self.fc(avg)
        feats = {
            "feats": [f0, f1, f2, f3],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre],
            "pooled_feat": avg,
        }
        return logits, feats


def _resnet(depth: int, filters: List[int], num_classes: int) -> ResNet:
    return ResNet(depth, filters, "basicblock", num_classes=num_classes)


def resnet8(num_classes: int = 100) -> ResNet:
    """ResNet-8 for CIFAR."""
    return _resnet(8, [16, 16, 32, 64], num_classes)


def resnet14(num_classes: int = 100) -> ResNet:
    """ResNet-14 for CIFAR."""
    return _resnet(14, [16, 16, 32, 64], num_classes)


def resnet20(num_classes: int = 100) -> ResNet:
    """ResNet-20 for CIFAR."""
    return _resnet(20, [16, 16, 32, 64], num_classes)


def resnet32(num_classes: int = 100) -> ResNet:
    """ResNet-32 for CIFAR."""
    return _resnet(32, [16, 16, 32, 64], num_classes)


def resnet44(num_classes: int = 100) -> ResNet:
    """ResNet-44 for CIFAR."""
    return _resnet(44, [16, 16, 32, 64], num_classes)


def resnet56(num_classes: int = 100) -> ResNet:
    """ResNet-56 for CIFAR."""
    return _resnet(56, [16, 16, 32, 64], num_classes)


def resnet110(num_classes: int = 100) -> ResNet:
    """ResNet-110 for CIFAR."""
    return _resnet(110, [16, 16, 32, 64], num_classes)


def resnet8x4(num_classes: int = 100) -> ResNet:
    """ResNet-8 with 4x wider channels (32-64-128-256)."""
    return _resnet(8, [32, 64, 128, 256], num_classes)


def resnet32x4(num_classes: int = 100) -> ResNet:
    """ResNet-32 with 4x wider channels (32-64-128-256)."""
    return _resnet(32, [32, 64, 128, 256], num_classes)
