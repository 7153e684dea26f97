"""Building blocks shared by the noise-prediction networks, the noise adapters and the branch."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


class _FastPaths:
    enabled = True


_FAST = _FastPaths()


@contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Within the block, the diffusion modules' faster formulations (matrix products for 1×1 convolutions)
    are on or off; off runs the plain convolutions, for tests that hold both to the same numbers."""
    previous, _FAST.enabled = _FAST.enabled, enabled
    try:
        yield
    finally:
        _FAST.enabled = previous


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last layout when 4-D (a no-op when it already is); other tensors unchanged.

    The diffusion modules run channels-last: their small-spatial convolutions and batch norms are markedly
    faster so on CPU (measured 1.6× for a whole branch), and it is the layout tensor cores prefer.
    """
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def layout_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``x`` (same shape as ``reference``) in ``reference``'s channels-last layout when it has one."""
    if (reference.dim() == 4 and not reference.is_contiguous()
            and reference.is_contiguous(memory_format=torch.channels_last)):
        return x.contiguous(memory_format=torch.channels_last)
    return x


class PointwiseConv2d(nn.Conv2d):
    """A 1×1 convolution (same parameters and state dict as ``nn.Conv2d(cin, cout, 1)``) computed as one
    matrix product over every pixel: on a channels-last map the (B, H, W, C) memory is already the
    (B·H·W, C) matrix, and the (B·H·W, C') product is the channels-last output. On the small maps of the
    diffusion modules (1×1 logits, 2×2 … 8×8 features) this is several times faster than a convolution
    call, forward and backward; the arithmetic is the same (``fast_paths(False)`` runs the convolution,
    for comparison)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _FAST.enabled and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            b, c, h, w = x.shape
            rows = x.permute(0, 2, 3, 1).reshape(b * h * w, c)  # a view: channels-last memory is (B·H·W, C)
            out = F.linear(rows, self.weight.view(self.out_channels, c), self.bias)
            return out.view(b, h, w, self.out_channels).permute(0, 3, 1, 2)
        return super().forward(x)


class Bottleneck(nn.Module):
    """ResNet bottleneck with identity shortcut: 1×1 C→C/r, BN, ReLU, 3×3 C/r→C/r, BN, ReLU, 1×1 C/r→C,
    BN, plus the input (no activation after the sum)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        mid = max(channels // reduction, 1)
        self.block = nn.Sequential(
            PointwiseConv2d(channels, mid),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            PointwiseConv2d(mid, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + x


def conv1x1_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    """1×1 convolution followed by BatchNorm (DDKD's output projection and AE encoder)."""
    return nn.Sequential(PointwiseConv2d(in_channels, out_channels), nn.BatchNorm2d(out_channels))
