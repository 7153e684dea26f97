"""Deterministic DDIM sampling (η = 0, no clipping) over the second half of a 2·T-step grid (eq. 6)."""

from __future__ import annotations

from typing import Callable, List, Tuple

import torch
from torch import nn

from .blocks import reuse_dense_matrices

NoisePredictor = Callable[[torch.Tensor, int], torch.Tensor]


def ddim_timesteps(inference_steps: int, train_timesteps: int = 1000) -> List[int]:
    """The timesteps DDKD denoises through, in order.

    The DDIM grid for ``2·T`` steps over ``train_timesteps`` has ratio ``r = train_timesteps // (2T)`` and
    timesteps ``(2T-1)·r, ..., r, 0``; only its second half ``(T-1)·r, ..., r, 0`` is run
    (T = 5: 400, 300, 200, 100, 0), since a student feature is a partly-denoised sample, not pure noise.
    """
    if inference_steps < 1:
        raise ValueError(f"inference_steps must be >= 1, got {inference_steps}")
    ratio = train_timesteps // (2 * inference_steps)
    if ratio < 1:
        raise ValueError(f"{inference_steps} inference steps need at least {2 * inference_steps} train timesteps")
    return [k * ratio for k in reversed(range(inference_steps))]


class DDIMSampler(nn.Module):
    """Runs ``y ← √ᾱ_prev·x̂₀ + √(1-ᾱ_prev)·ε̂`` with ``x̂₀ = (y - √(1-ᾱ_t)·ε̂)/√ᾱ_t`` over
    :func:`ddim_timesteps`, with ``ᾱ_prev = ᾱ_{t-r}`` (1 when ``t - r < 0``).

    Each step is folded into ``y ← a_i·y + b_i·ε̂``; ``a_i``, ``b_i`` are precomputed once (float64
    arithmetic) and kept as Python floats, which multiply a tensor of any device without an indexing op.
    The update runs in float32 whatever the input dtype; gradients flow through every step.
    """

    def __init__(self, alphas_cumprod: torch.Tensor, inference_steps: int) -> None:
        super().__init__()
        num_train = alphas_cumprod.shape[0]
        self.timesteps: List[int] = ddim_timesteps(inference_steps, num_train)
        ratio = num_train // (2 * inference_steps)
        ac = alphas_cumprod.detach().double().cpu()
        self.coefficients: List[Tuple[float, float]] = []
        for t in self.timesteps:
            ab_t = ac[t]
            ab_prev = ac[t - ratio] if t - ratio >= 0 else torch.tensor(1.0, dtype=torch.float64)
            coef_y = (ab_prev / ab_t).sqrt()
            coef_eps = (1.0 - ab_prev).sqrt() - (ab_prev * (1.0 - ab_t) / ab_t).sqrt()
            self.coefficients.append((float(coef_y), float(coef_eps)))

    def forward(self, noise_net: NoisePredictor, y: torch.Tensor) -> torch.Tensor:
        """Denoise the starting point ``y`` with ``noise_net(y, t) -> ε̂``; returns ``y``'s dtype. A noise net
        that offers ``at_timesteps`` (``noise_net.py``) gives the loop one predictor per step."""
        dtype = y.dtype
        y = y.float()
        steps = (noise_net.at_timesteps(self.timesteps) if hasattr(noise_net, "at_timesteps")
                 else [lambda x, t=t: noise_net(x, t) for t in self.timesteps])
        with reuse_dense_matrices():  # the steps share the noise net's weights
            for predict, (coef_y, coef_eps) in zip(steps, self.coefficients):
                eps = predict(y.to(dtype)).float()
                y = torch.add(y * coef_y, eps, alpha=coef_eps)
        return y.to(dtype)
