"""The linear DDPM noise schedule (eqs. 2-4) and forward noising ``q(y_t | y_0)``."""

from __future__ import annotations

import torch
from torch import nn

#: DDPM's linear schedule (Ho et al., 2020), as used by DiffKD and DDKD
DEFAULT_TRAIN_TIMESTEPS = 1000
DEFAULT_BETA_START = 1e-4
DEFAULT_BETA_END = 0.02


def linear_betas(
    num_timesteps: int = DEFAULT_TRAIN_TIMESTEPS,
    beta_start: float = DEFAULT_BETA_START,
    beta_end: float = DEFAULT_BETA_END,
) -> torch.Tensor:
    """``β_t`` linear from ``beta_start`` to ``beta_end`` over ``num_timesteps`` steps (float64, CPU)."""
    if num_timesteps < 1:
        raise ValueError(f"num_timesteps must be >= 1, got {num_timesteps}")
    return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)


def linear_alphas_cumprod(
    num_timesteps: int = DEFAULT_TRAIN_TIMESTEPS,
    beta_start: float = DEFAULT_BETA_START,
    beta_end: float = DEFAULT_BETA_END,
) -> torch.Tensor:
    """``ᾱ_t = ∏_{s<=t} (1 - β_s)`` for the linear ``β`` of :func:`linear_betas` (float64, CPU)."""
    return torch.cumprod(1.0 - linear_betas(num_timesteps, beta_start, beta_end), dim=0)


class LinearNoiseSchedule(nn.Module):
    """Holds ``ᾱ_t``, ``√ᾱ_t`` and ``√(1-ᾱ_t)`` as float32 buffers (not saved in checkpoints:
    they are derived constants) and noises clean samples: ``y_t = √ᾱ_t·y_0 + √(1-ᾱ_t)·ε``."""

    def __init__(
        self,
        num_timesteps: int = DEFAULT_TRAIN_TIMESTEPS,
        beta_start: float = DEFAULT_BETA_START,
        beta_end: float = DEFAULT_BETA_END,
    ) -> None:
        super().__init__()
        self.num_timesteps = int(num_timesteps)
        alphas_cumprod = linear_alphas_cumprod(num_timesteps, beta_start, beta_end)
        self.register_buffer("alphas_cumprod", alphas_cumprod.float(), persistent=False)
        self.register_buffer("sqrt_alphas_cumprod", alphas_cumprod.sqrt().float(), persistent=False)
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1.0 - alphas_cumprod).sqrt().float(), persistent=False)

    def sample_timesteps(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """``t ~ U{0, ..., num_timesteps - 1}``, one per sample (int64)."""
        return torch.randint(0, self.num_timesteps, (batch_size,), device=device)

    def q_sample(self, y0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward noising of ``y0`` (B, ...) at per-sample timesteps ``t`` (B,) with ``noise`` (like ``y0``).

        Computed in float32 whatever the input dtype; the result has ``y0``'s dtype.
        """
        shape = (t.shape[0],) + (1,) * (y0.dim() - 1)
        a = self.sqrt_alphas_cumprod.float()[t].view(shape)
        s = self.sqrt_one_minus_alphas_cumprod.float()[t].view(shape)
        return (a * y0.float() + s * noise.float()).to(y0.dtype)
