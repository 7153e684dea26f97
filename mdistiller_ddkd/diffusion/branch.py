"""One denoising branch of DDKD/DiffKD: proj_in → adaptive noise → DDIM with Φθ → proj_out, plus the
diffusion loss that trains Φθ on the (detached) teacher latent."""

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
    logits viewed as (B,K,1,1). With ``adaptive_noise=False`` there is no adapter and denoising starts
    from the projected student tensor itself (γ = 1).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        kernel: str,
        inference_steps: int = 5,
        train_timesteps: int = 1000,
        adaptive_noise: bool = True,
    ) -> None:
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
        """The DDIM starting point for the latent ``z`` and the adapter's γ per sample (without the
        adapter: ``z`` itself and None)."""
        if self.adapter is None:
            return z, None
        return self.adapter(z)

    def denoise(self, z: torch.Tensor) -> torch.Tensor:
        """Adapter starting point (or ``z``) → DDIM; ``z`` is already in the latent space."""
        return self.sampler(self.noise_net, self.start(z)[0])

    def transform(self, student: torch.Tensor, denoise: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(proj_out(DDIM(start(proj_in(student)))), γ)``: what the distillation loss sees.

        ``denoise=False`` gives ``proj_out(proj_in(student))``: the same projections with zero DDIM steps and
        no noise (γ None), the "raw" side of the diagnostics' gap metrics.
        """
        z = self.proj_in(channels_last(student))
        if not denoise:
            return self.proj_out(z), None
        start, gamma = self.start(z)
        return self.proj_out(self.sampler(self.noise_net, start)), gamma

    def diffusion_loss(self, target: torch.Tensor, t: Optional[torch.Tensor] = None,
                       noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Eq. 5 on ``target`` (detached here, so it trains only Φθ): ``t ~ U{0..N-1}``, ``ε ~ N(0, I)``
        unless given (the diagnostics evaluate it per timestep range)."""
        target = channels_last(target.detach())
        if t is None:
            t = self.schedule.sample_timesteps(target.shape[0], target.device)
        if noise is None:
            noise = torch.randn(target.shape, device=target.device, dtype=torch.float32)
        noise = layout_like(noise, target)
        noisy = self.schedule.q_sample(target, t, noise)
        return noise_prediction_loss(self.noise_net(noisy, t), noise)

    def forward(self, student: torch.Tensor, teacher_latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(transform(student)[0], diffusion loss on teacher_latent)``."""
        denoised, _ = self.transform(student)
        return denoised, self.diffusion_loss(teacher_latent)
