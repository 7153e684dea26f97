"""Building blocks shared by the noise-prediction networks, the noise adapters and the branch."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class _FastPaths:
    enabled = True


_FAST = _FastPaths()


def fast_paths_enabled() -> bool:
    """Whether the diffusion modules use their faster formulations now (see ``fast_paths``)."""
    return _FAST.enabled


@contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Within the block, the diffusion modules' faster formulations (matrix products for 1×1 convolutions and
    for 3×3 ones on tiny maps, one time-embedding lookup per DDIM loop) are on or off; off runs the plain
    ones, for tests that hold both to the same numbers."""
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


def _channels_last_4d(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def mse_loss(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.mse_loss(input, target)`` (the mean), whose gradient keeps channels-last maps channels-last.

    ``F.mse_loss`` returns a contiguous (NCHW) gradient for channels-last inputs, and every channels-last
    module it then meets pays for the mixed layouts (a BatchNorm backward with an NCHW gradient of a
    channels-last map is ~10× slower on CPU). With the fast paths on, two channels-last maps are compared
    as the (B, H, W, C) tensors their memory already is: the same elements in the same order, so the same
    value, and a gradient in their layout."""
    if _FAST.enabled and _channels_last_4d(input) and _channels_last_4d(target):
        return F.mse_loss(input.permute(0, 2, 3, 1), target.permute(0, 2, 3, 1))
    return F.mse_loss(input, target)


class GlobalAvgPool(nn.Module):
    """(B, C, H, W) → (B, C), the mean over each map (``AdaptiveAvgPool2d(1)`` then ``Flatten(1)``). With the fast
    paths on, a channels-last map is averaged as its (B, H, W, C) memory, so the gradient comes back
    channels-last (the NCHW mean's gradient is NCHW, the mixed-layout case of ``mse_loss``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _FAST.enabled and _channels_last_4d(x):
            return x.permute(0, 2, 3, 1).mean(dim=(1, 2))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


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
        if _FAST.enabled and _channels_last_4d(x):
            b, c, h, w = x.shape
            if h == w == 1:  # logits as (B, K, 1, 1): the rows are the tensor itself, no permutes needed
                return F.linear(x.view(b, c), self.weight.view(self.out_channels, c), self.bias)[:, :, None, None]
            rows = x.permute(0, 2, 3, 1).reshape(b * h * w, c)  # a view: channels-last memory is (B·H·W, C)
            out = F.linear(rows, self.weight.view(self.out_channels, c), self.bias)
            return out.view(b, h, w, self.out_channels).permute(0, 3, 1, 2)
        return super().forward(x)


class Conv3x3(nn.Conv2d):
    """A 3×3 convolution with padding 1 (same parameters and state dict as ``nn.Conv2d(cin, cout, 3,
    padding=1)``). On maps of at most ``DENSE_MAX_PIXELS`` pixels (the 2×2 last-stage maps of the
    MobileNet/ShuffleNet students) every output pixel sees every input pixel, so the convolution is one
    (H·W·C_in → H·W·C_out) matrix built from the kernel's taps: one matrix product instead of a
    convolution call, far cheaper in backward on such maps. Within ``reuse_dense_matrices()`` (a DDIM loop,
    whose steps share the weights) the matrix is built once. Larger maps run the convolution."""

    #: the largest map (in pixels) the dense matrix serves
    DENSE_MAX_PIXELS = 4

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, 3, padding=1)

    def dense(self, h: int, w: int) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(matrix, bias)`` of the convolution on h×w channels-last maps flattened to (B, H·W·C)."""
        cached = _REUSE.matrices.get((id(self), h, w)) if _REUSE.active else None
        if cached is not None:
            return cached
        c, cout = self.in_channels, self.out_channels
        kernel = self.weight.view(cout, c, 9)[:, :, _dense_taps(h, w, self.weight.device)]  # (C_out, C_in, P, P)
        matrix = kernel.permute(2, 0, 3, 1).reshape(h * w * cout, h * w * c)
        result = (matrix, self.bias.repeat(h * w) if self.bias is not None else None)
        if _REUSE.active:
            _REUSE.matrices[(id(self), h, w)] = result
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if not (_FAST.enabled and h * w <= self.DENSE_MAX_PIXELS and _channels_last_4d(x)):
            return super().forward(x)
        matrix, bias = self.dense(h, w)
        out = F.linear(x.permute(0, 2, 3, 1).reshape(b, h * w * c), matrix, bias)
        return out.view(b, h, w, self.out_channels).permute(0, 3, 1, 2)


class _Reuse:
    def __init__(self) -> None:
        self.active = False
        self.matrices: dict = {}  # an instance's: a class-level dict would keep the first loop's matrices alive


_REUSE = _Reuse()


@contextmanager
def reuse_dense_matrices() -> Iterator[None]:
    """Within the block (one forward pass whose convolutions keep their weights, such as a DDIM loop), each
    ``Conv3x3`` builds its dense matrix once; the matrices are dropped at the end."""
    outer = _REUSE.active
    _REUSE.active = True
    try:
        yield
    finally:
        if not outer:
            _REUSE.active, _REUSE.matrices = False, {}


_TAPS: dict = {}


def _dense_taps(h: int, w: int, device: torch.device) -> torch.Tensor:
    """For every (output pixel p, input pixel q) of an h×w map (row-major), the index ``3·(qy-py+1) +
    (qx-px+1)`` of the 3×3 tap that joins them (all exist: the map is at most 2 pixels wide and high)."""
    key = (h, w, device)
    if key not in _TAPS:
        ys, xs = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
        dy = ys[None, :] - ys[:, None] + 1
        dx = xs[None, :] - xs[:, None] + 1
        _TAPS[key] = (3 * dy + dx).to(device)
    return _TAPS[key]


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
            Conv3x3(mid, mid),
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
