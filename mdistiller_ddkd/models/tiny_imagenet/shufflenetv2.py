"""ShuffleNet V2 for Tiny-ImageNet: the CIFAR ShuffleV2 (same modules and state dict) with global average
pooling of the head.

mdistiller lists its CIFAR ``ShuffleV2`` for Tiny-ImageNet unchanged, but that model pools fixed 4x4
windows (sized for 32x32 inputs): at 64x64 the head map is 8x8, pooling leaves 2x2x1024 values and the
1024-input classifier fails. Averaging the whole map is what the 4x4 window does at 32x32.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch.nn.functional as F
from torch import Tensor

from ..cifar.shufflenetv2 import ShuffleNetV2

__all__ = ["ShuffleNetV2GAP", "ShuffleV2"]


class ShuffleNetV2GAP(ShuffleNetV2):
    """:class:`ShuffleNetV2` whose head is averaged over the whole map, for any input size."""

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        f0 = F.relu(self.bn1(self.conv1(x)))
        f1, f1_pre = self.layer1(f0)
        f2, f2_pre = self.layer2(f1)
        f3, f3_pre = self.layer3(f2)
        pooled = F.adaptive_avg_pool2d(F.relu(self.bn2(self.conv2(f3))), 1).flatten(1)
        return self.linear(pooled), {
            "feats": [f0, f1, f2, f3],
            "preact_feats": [f0, f1_pre, f2_pre, f3_pre],
            "pooled_feat": pooled,
        }


def ShuffleV2(num_classes: int = 200) -> ShuffleNetV2GAP:
    """ShuffleNet V2, net size 1, for Tiny-ImageNet."""
    return ShuffleNetV2GAP(net_size=1, num_classes=num_classes)
