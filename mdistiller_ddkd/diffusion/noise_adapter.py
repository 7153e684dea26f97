"""Adaptive noise matching (eq. 9): a per-sample weight γ ∈ (0, 1) predicted from the student's latent,
and the denoising starting point ``y = γ·z_s + (1-γ)·ε``."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .blocks import Bottleneck, GlobalAvgPool, PointwiseConv2d, layout_like


class _NoiseAdapter(nn.Module):
    """``self.features`` maps (B,C,H,W) to (B,C); a Linear(C,2) + softmax gives ``γ`` as column 0."""

    features: nn.Module

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pred = nn.Linear(channels, 2)

    def gamma(self, z: torch.Tensor) -> torch.Tensor:
        """γ per sample, shape (B,), float32."""
        return torch.softmax(self.pred(self.features(z)).float(), dim=1)[:, 0]

    def forward(self, z: torch.Tensor, noise: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(γ·z + (1-γ)·ε, γ)`` with ``ε`` = ``noise`` or fresh Gaussian noise; the start has ``z``'s dtype."""
        if noise is None:
            noise = layout_like(torch.randn(z.shape, device=z.device, dtype=torch.float32), z)
        g = self.gamma(z).view(-1, *([1] * (z.dim() - 1)))
        start = g * z.float() + (1.0 - g) * noise.float()
        return start.to(z.dtype), g.flatten()


class NoiseAdapter3x3(_NoiseAdapter):
    """Feature variant: bottleneck block (reduction 8) → global average pool → Linear(C,2) → softmax."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.features = nn.Sequential(Bottleneck(channels, 8), GlobalAvgPool())


class NoiseAdapter1x1(_NoiseAdapter):
    """Logit variant: 1×1 conv C→2C, BN, ReLU, 1×1 2C→C, BN → flatten → Linear(C,2) → softmax."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.features = nn.Sequential(
            PointwiseConv2d(channels, 2 * channels),
            nn.BatchNorm2d(2 * channels),
            nn.ReLU(inplace=True),
            PointwiseConv2d(2 * channels, channels),
            nn.BatchNorm2d(channels),
            nn.Flatten(1),
        )


def build_noise_adapter(kernel: str, channels: int) -> _NoiseAdapter:
    """``kernel`` is ``"3x3"`` (features) or ``"1x1"`` (logits, which are (B,K,1,1))."""
    by_kernel = {"3x3": NoiseAdapter3x3, "1x1": NoiseAdapter1x1}
    if kernel not in by_kernel:
        raise ValueError(f"noise-adapter kernel must be '3x3' or '1x1', got {kernel!r}")
    return by_kernel[kernel](channels)
