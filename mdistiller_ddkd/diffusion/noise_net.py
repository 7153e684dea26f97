"""Noise-prediction networks Φθ(y, t) (eq. 5): a learned time embedding added to ``y``, then a small
convolutional network. The 3×3 variant serves feature maps, the 1×1 variant logits viewed as (B,K,1,1)."""

from __future__ import annotations

from typing import Callable, List, Sequence, Union

import torch
from torch import nn

from .blocks import Bottleneck, PointwiseConv2d, conv1x1_bn, fast_paths_enabled

#: rows of the learned time-embedding table (covers every training timestep)
TIME_EMBEDDING_SIZE = 1280

Timestep = Union[int, torch.Tensor]


class _NoiseNet(nn.Module):
    """Adds ``time_embedding[t]`` (broadcast over H, W) to ``y`` and runs ``self.body``."""

    body: nn.Module

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.time_embedding = nn.Embedding(TIME_EMBEDDING_SIZE, channels)

    def add_time(self, y: torch.Tensor, t: Timestep) -> torch.Tensor:
        """``y + E[t]``; ``t`` is one timestep for the whole batch (int) or one per sample (B,)."""
        if isinstance(t, int):
            emb = self.time_embedding.weight[t].view(1, -1, 1, 1)
        else:
            emb = self.time_embedding(t).view(t.shape[0], -1, 1, 1)
        return y + emb.to(y.dtype)

    def forward(self, y: torch.Tensor, t: Timestep) -> torch.Tensor:
        """Predicted noise ε̂ (same shape as ``y``)."""
        return self.body(self.add_time(y, t))

    def at_timesteps(self, timesteps: Sequence[int]) -> List[Callable[[torch.Tensor], torch.Tensor]]:
        """``[y -> Φθ(y, t) for t in timesteps]`` for a DDIM loop. The rows ``E[t]`` are gathered in one lookup,
        so backward fills one gradient buffer for the whole table instead of one per step (the table has
        ``TIME_EMBEDDING_SIZE`` rows; a step uses one); the values are those of ``forward(y, t)``."""
        if not fast_paths_enabled():
            return [lambda y, t=t: self(y, t) for t in timesteps]
        index = torch.tensor(list(timesteps), device=self.time_embedding.weight.device)
        rows = self.time_embedding(index)

        def predictor(i: int) -> Callable[[torch.Tensor], torch.Tensor]:
            return lambda y: self.body(y + rows[i].view(1, -1, 1, 1).to(y.dtype))

        return [predictor(i) for i in range(len(timesteps))]


class NoiseNet3x3(_NoiseNet):
    """Feature variant: two bottleneck blocks (reduction 4), then 1×1 conv C→C + BN."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        self.body = nn.Sequential(Bottleneck(channels, 4), Bottleneck(channels, 4), conv1x1_bn(channels, channels))


class NoiseNet1x1(_NoiseNet):
    """Logit variant: 1×1 convs C→4C, BN, ReLU, 4C→C, BN, C→4C, BN, ReLU, 4C→C."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels)
        wide = 4 * channels
        self.body = nn.Sequential(
            PointwiseConv2d(channels, wide),
            nn.BatchNorm2d(wide),
            nn.ReLU(inplace=True),
            PointwiseConv2d(wide, channels),
            nn.BatchNorm2d(channels),
            PointwiseConv2d(channels, wide),
            nn.BatchNorm2d(wide),
            nn.ReLU(inplace=True),
            PointwiseConv2d(wide, channels),
        )


def build_noise_net(kernel: str, channels: int) -> _NoiseNet:
    """``kernel`` is ``"3x3"`` (features) or ``"1x1"`` (logits)."""
    by_kernel = {"3x3": NoiseNet3x3, "1x1": NoiseNet1x1}
    if kernel not in by_kernel:
        raise ValueError(f"noise-net kernel must be '3x3' or '1x1', got {kernel!r}")
    return by_kernel[kernel](channels)
