"""The weight initialisation shared by the CIFAR VGG, MobileNetV2 and WRN models (as in mdistiller's zoo)."""

from __future__ import annotations

import math
from typing import Optional

from torch import nn


def init_fan_out_normal(model: nn.Module, linear_std: Optional[float] = 0.01) -> None:
    """Convs ~ N(0, 2 / (k_h·k_w·out_channels)), BatchNorm = (1, 0), Linear weights ~ N(0, linear_std)
    (left at PyTorch's default when ``linear_std`` is None); all biases zero."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                m.weight.data.normal_(0, linear_std)
            m.bias.data.zero_()
