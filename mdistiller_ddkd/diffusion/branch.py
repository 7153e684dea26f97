"""One denoising branch of DDKD/DiffKD as the paper has it (``shared/spec/DDKD.md``, equation numbers the paper's):
proj_in → adaptive noise (eq. 9) → DDIM with Φθ (eq. 6) → proj_out, plus the diffusion loss (eq. 5) that trains Φθ
on the (detached) teacher latent. The opt-in variants, none of them the paper's, are in ``variants.py``."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .blocks import PointwiseConv2d, channels_last, conv1x1_bn, layout_like
from .noise_adapter import build_noise_adapter
from .noise_net import TIME_EMBEDDING_SIZE, build_noise_net
from .objective import noise_prediction_loss
from .sampler import DDIMSampler
from .schedule import LinearNoiseSchedule


class DiffusionBranch(nn.Module):
    """Denoises a student tensor towards the teacher's latent space.

    ``kernel`` picks the noise network and adapter variant: ``"3x3"`` for feature maps, ``"1x1"`` for
    logits viewed as (B,K,1,1). With ``adaptive_noise=False`` (an ablation switch) there is no adapter and
    denoising starts from the projected student tensor itself (γ = 1).
    """

    def __init__(self, in_channels: int, channels: int, kernel: str, inference_steps: int = 5,
                 train_timesteps: int = 1000, adaptive_noise: bool = True) -> None:
        super().__init__()
        if train_timesteps > TIME_EMBEDDING_SIZE:
            raise ValueError(f"train_timesteps ({train_timesteps}) exceeds the time embedding ({TIME_EMBEDDING_SIZE})")
        self.proj_in = PointwiseConv2d(in_channels, channels)
        self.adapter = build_noise_adapter(kernel, channels) if adaptive_noise else None
        self.noise_net = build_noise_net(kernel, channels)
        self.schedule = LinearNoiseSchedule(train_timesteps)
        self.sampler = DDIMSampler(self.schedule.alphas_cumprod, inference_steps)
        self.proj_out = conv1x1_bn(channels, channels)
        self.to(memory_format=torch.channels_last)  # see blocks.channels_last

    def start(self, z: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Eq. 9: ``(γ·z + (1-γ)·ε, γ)`` with γ per sample from the adapter (without it: ``(z, None)``)."""
        if self.adapter is None:
            return z, None
        return self.adapter(z)

    def ddim(self, y: torch.Tensor) -> torch.Tensor:
        """Eq. 6: the DDIM chain with Φθ from the starting point ``y`` (t = 400, 300, 200, 100, 0 for T = 5)."""
        return self.sampler(self.noise_net, y)

    def chain(self, z: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(DDIM(start(z)), γ)`` (eqs. 9 and 6) for ``z`` in the latent space."""
        start, gamma = self.start(z)
        return self.ddim(start), gamma

    def transform(self, student: torch.Tensor, denoise: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(ẑ_s, γ)`` with ``ẑ_s = proj_out(DDIM(start(proj_in(student))))``: what eq. 8's distance sees.

        ``denoise=False`` gives ``proj_out(proj_in(student))``: the same projections with zero DDIM steps and
        no noise (γ None), the "raw" side of the diagnostics' gap metrics.
        """
        z = self.proj_in(channels_last(student))
        if not denoise:
            return self.proj_out(z), None
        y, gamma = self.chain(z)
        return self.proj_out(y), gamma

    def diffusion_loss(self, target: torch.Tensor, t: Optional[torch.Tensor] = None,
                       noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Eq. 5 on ``target`` noised by eq. 4 (detached here, so it trains only Φθ): ``t ~ U{0..N-1}``,
        ``ε ~ N(0, I)`` unless given (the diagnostics evaluate it per timestep range)."""
        target = channels_last(target.detach())
        if t is None:
            t = self.schedule.sample_timesteps(target.shape[0], target.device)
        if noise is None:
            noise = torch.randn(target.shape, device=target.device, dtype=torch.float32)
        noise = layout_like(noise, target)
        noisy = self.schedule.q_sample(target, t, noise)
        return noise_prediction_loss(self.noise_net(noisy, t), noise)

    def forward(self, student: Optional[torch.Tensor],
                teacher_latent: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """One training step's ``(transform(student)[0], diffusion_loss(teacher_latent))``; with ``student``
        None the first is None (the denoiser learns while the distillation term looks elsewhere)."""
        denoised = None if student is None else self.transform(student)[0]
        return denoised, self.diffusion_loss(teacher_latent)
