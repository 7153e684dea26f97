"""One denoising branch of DDKD/DiffKD: proj_in → adaptive noise → DDIM with Φθ → proj_out, plus the
diffusion loss that trains Φθ on the (detached) teacher latent.

Opt-in variants (off by default, where the branch is the paper's, bit for bit): ``target_scale="unit"``
runs the diffusion in the latent divided by its running RMS; ``noise_net_kd_grad=False`` runs the DDIM chain
with Φθ's weights detached (Φθ then learns from eq. 5 only); ``adapter_init_gamma`` starts the adapter at a
fixed γ; ``time_embedding_init="zero"`` starts Φθ's time-embedding table at zero instead of N(0, 1) (see
``docs/ddkd.md``)."""

from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
from torch import nn
from torch.func import functional_call

from .blocks import PointwiseConv2d, channels_last, conv1x1_bn, layout_like
from .noise_adapter import build_noise_adapter
from .noise_net import TIME_EMBEDDING_SIZE, build_noise_net
from .objective import noise_prediction_loss
from .sampler import DDIMSampler
from .schedule import LinearNoiseSchedule

TARGET_SCALES = ("none", "unit")
#: weight of the newest batch in the running RMS of ``target_scale="unit"`` (BatchNorm's momentum)
SCALE_MOMENTUM = 0.1


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
        target_scale: str = "none",
        noise_net_kd_grad: bool = True,
        adapter_init_gamma: float = 0.0,
        time_embedding_init: str = "normal",
    ) -> None:
        super().__init__()
        if train_timesteps > TIME_EMBEDDING_SIZE:
            raise ValueError(f"train_timesteps ({train_timesteps}) exceeds the time embedding ({TIME_EMBEDDING_SIZE})")
        if target_scale not in TARGET_SCALES:
            raise ValueError(f"target_scale must be one of {TARGET_SCALES}, got {target_scale!r}")
        self.proj_in = PointwiseConv2d(in_channels, channels)
        self.adapter = build_noise_adapter(kernel, channels) if adaptive_noise else None
        if self.adapter is not None and adapter_init_gamma:
            self.adapter.init_gamma(adapter_init_gamma)
        self.noise_net = build_noise_net(kernel, channels, time_embedding_init)
        self.schedule = LinearNoiseSchedule(train_timesteps)
        self.sampler = DDIMSampler(self.schedule.alphas_cumprod, inference_steps)
        self.proj_out = conv1x1_bn(channels, channels)
        self.noise_net_kd_grad = bool(noise_net_kd_grad)
        self.target_scale = target_scale
        if target_scale == "unit":  # the running RMS of the teacher latent (0 until the first batch)
            self.register_buffer("latent_rms", torch.zeros((), dtype=torch.float32))
        self.to(memory_format=torch.channels_last)  # see blocks.channels_last

    def observe(self, target: torch.Tensor) -> None:
        """``target_scale="unit"``, in training: update the running RMS with the (detached) teacher latent — the
        first batch sets it, then ``rms ← (1 - m)·rms + m·batch RMS`` with m = ``SCALE_MOMENTUM``."""
        if self.target_scale != "unit" or not self.training:
            return
        with torch.no_grad():
            batch_rms = target.detach().float().pow(2).mean().sqrt()
            running = (1.0 - SCALE_MOMENTUM) * self.latent_rms + SCALE_MOMENTUM * batch_rms
            self.latent_rms.copy_(torch.where(self.latent_rms > 0, running, batch_rms))  # no host sync

    def scale(self) -> Optional[torch.Tensor]:
        """The divisor of the diffusion space (``target_scale="unit"``: the running RMS, 1 before any batch),
        or None (the paper: no scaling)."""
        if self.target_scale != "unit":
            return None
        return torch.where(self.latent_rms > 0, self.latent_rms, torch.ones_like(self.latent_rms))

    def chain_noise_net(self) -> Callable[[torch.Tensor, object], torch.Tensor]:
        """Φθ as the DDIM chain calls it: the module itself, or (``noise_net_kd_grad=False``) the module with its
        weights detached, so the distillation terms reach everything before it but not Φθ's weights (its
        BatchNorm statistics update as usual)."""
        if self.noise_net_kd_grad:
            return self.noise_net
        weights = {name: p.detach() for name, p in self.noise_net.named_parameters()}
        return lambda y, t: functional_call(self.noise_net, weights, (y, t))

    def start(self, z: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The DDIM starting point for the latent ``z`` and the adapter's γ per sample (without the
        adapter: ``z`` itself and None)."""
        if self.adapter is None:
            return z, None
        return self.adapter(z)

    def denoise(self, z: torch.Tensor) -> torch.Tensor:
        """Adapter starting point (or ``z``) → DDIM; ``z`` is already in the latent space."""
        return self.chain(z)[0]

    def chain(self, z: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(DDIM(start(z)), γ)`` for ``z`` in the latent space (with ``target_scale="unit"``, the chain runs
        on ``z / rms`` and its result is multiplied back)."""
        scale = self.scale()
        if scale is not None:
            z = z / scale.to(z.dtype)
        start, gamma = self.start(z)
        y = self.sampler(self.chain_noise_net(), start)
        return (y if scale is None else y * scale.to(y.dtype)), gamma

    def transform(self, student: torch.Tensor, denoise: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``(proj_out(DDIM(start(proj_in(student)))), γ)``: what the distillation loss sees.

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
        """Eq. 5 on ``target`` (detached here, so it trains only Φθ): ``t ~ U{0..N-1}``, ``ε ~ N(0, I)``
        unless given (the diagnostics evaluate it per timestep range)."""
        target = channels_last(target.detach())
        scale = self.scale()
        if scale is not None:
            target = target / scale.to(target.dtype)
        if t is None:
            t = self.schedule.sample_timesteps(target.shape[0], target.device)
        if noise is None:
            noise = torch.randn(target.shape, device=target.device, dtype=torch.float32)
        noise = layout_like(noise, target)
        noisy = self.schedule.q_sample(target, t, noise)
        return noise_prediction_loss(self.noise_net(noisy, t), noise)

    def forward(self, student: torch.Tensor, teacher_latent: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(transform(student)[0], diffusion loss on teacher_latent)`` (first, with ``target_scale="unit"``,
        the running RMS takes in ``teacher_latent``)."""
        self.observe(teacher_latent)
        denoised, _ = self.transform(student)
        return denoised, self.diffusion_loss(teacher_latent)
