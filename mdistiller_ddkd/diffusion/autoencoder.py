"""The linear autoencoder of eq. 7 that compresses teacher features to the diffusion latent."""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from .blocks import PointwiseConv2d, channels_last, conv1x1_bn


class LinearAutoencoder(nn.Module):
    """Encoder 1×1 conv C→Ca + BN, decoder 1×1 conv Ca→C (run channels-last, see ``channels_last``)."""

    def __init__(self, in_channels: int, latent_channels: int) -> None:
        super().__init__()
        self.encoder = conv1x1_bn(in_channels, latent_channels)
        self.decoder = PointwiseConv2d(latent_channels, in_channels)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(latent, reconstruction)``."""
        latent = self.encoder(channels_last(x))
        return latent, self.decoder(latent)
