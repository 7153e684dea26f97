"""The diffusion training objective (eq. 5): predict the noise that was added."""

from __future__ import annotations

import torch

from .blocks import mse_loss


def noise_prediction_loss(predicted_noise: torch.Tensor, true_noise: torch.Tensor) -> torch.Tensor:
    """``MSE(Φθ(y_t, t), ε)``, mean over every element, computed in float32."""
    return mse_loss(predicted_noise.float(), true_noise.float())
