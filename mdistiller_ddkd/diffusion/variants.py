"""DDKD's opt-in variants (``docs/ddkd.md#variants``), none of them the paper's and none kept by the study: what
could make the denoisers learn. ``build_branch`` gives the paper's ``DiffusionBranch`` itself unless a variant
changes how the branch computes; the variants that only change an initialisation are applied to it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import torch
from torch import nn
from torch.func import functional_call

from .branch import DiffusionBranch
from .noise_adapter import NoiseAdapter1x1, NoiseAdapter3x3

#: weight of the newest batch in the running RMS of ``unit_scale`` (BatchNorm's momentum)
SCALE_MOMENTUM = 0.1


@dataclass(frozen=True)
class Variants:
    """Which variants a branch runs; the defaults are the paper's method. Values are checked where the config
    node that sets them is declared (``distillers/ddkd.py``)."""

    #: the noise network's time-embedding table starts at zero instead of N(0, 1)
    zero_time_embedding: bool = False
    #: the adapter starts at this γ for every input (in (0, 1)); 0: PyTorch's initialisation
    adapter_init_gamma: float = 0.0
    #: (logit branch) the branch works on per-sample z-scores, its output mapped back with the student's statistics
    standardize_logits: bool = False
    #: the diffusion runs in the latent divided by the teacher latent's running RMS
    unit_scale: bool = False
    #: False: the DDIM chain runs Φθ with detached weights, so Φθ learns from eq. 5 only
    noise_net_kd_grad: bool = True

    @property
    def change_computation(self) -> bool:
        """Whether the branch computes differently (not only starts from other weights)."""
        return self.standardize_logits or self.unit_scale or not self.noise_net_kd_grad


def standardize(logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(z, mean, scale)``: per-sample z-scores of (B, K) logits over the classes, ``z = (l - mean) / scale``
    with ``scale = std + 1e-7`` (unbiased std) — logit standardisation as Sun et al. (CVPR 2024) compute it;
    ``mean + scale·z`` maps back."""
    mean = logits.mean(dim=1, keepdim=True)
    scale = logits.std(dim=1, keepdim=True) + 1e-7
    return (logits - mean) / scale, mean, scale


def init_adapter_gamma(adapter: Union[NoiseAdapter3x3, NoiseAdapter1x1], gamma: float) -> None:
    """Start ``adapter`` at γ = ``gamma`` ∈ (0, 1) for every input: zero weights and bias ``(log(γ / (1 - γ)), 0)``
    in its Linear(C, 2), so the softmax's first column is ``gamma`` until training moves them."""
    with torch.no_grad():
        adapter.pred.weight.zero_()
        adapter.pred.bias.copy_(torch.tensor([math.log(gamma / (1.0 - gamma)), 0.0]))


class VariantBranch(DiffusionBranch):
    """The paper's branch with the variants that change its computation (``Variants.change_computation``)."""

    def __init__(self, in_channels: int, channels: int, kernel: str, variants: Variants, **paper) -> None:
        super().__init__(in_channels, channels, kernel, **paper)
        self.variants = variants
        if variants.unit_scale:  # the running RMS of the teacher latent (0 until the first batch)
            self.register_buffer("latent_rms", torch.zeros((), dtype=torch.float32))

    def teacher_target(self, latent: torch.Tensor) -> torch.Tensor:
        """The teacher latent as the diffusion model learns it before any scaling: per-sample z-scores of the
        logits (B,K,1,1) with ``standardize_logits``, else ``latent`` itself."""
        if not self.variants.standardize_logits:
            return latent
        z = standardize(latent.flatten(1).float())[0]
        return z.to(latent.dtype)[:, :, None, None]

    def observe(self, target: torch.Tensor) -> None:
        """``unit_scale``, in training: update the running RMS with the (detached) teacher target — the first
        batch sets it, then ``rms ← (1 - m)·rms + m·batch RMS`` with m = ``SCALE_MOMENTUM``."""
        if not self.variants.unit_scale or not self.training:
            return
        with torch.no_grad():
            batch_rms = target.detach().float().pow(2).mean().sqrt()
            running = (1.0 - SCALE_MOMENTUM) * self.latent_rms + SCALE_MOMENTUM * batch_rms
            self.latent_rms.copy_(torch.where(self.latent_rms > 0, running, batch_rms))  # no host sync

    def scale(self) -> Optional[torch.Tensor]:
        """The divisor of the diffusion space (``unit_scale``: the running RMS, 1 before any batch), or None."""
        if not self.variants.unit_scale:
            return None
        return torch.where(self.latent_rms > 0, self.latent_rms, torch.ones_like(self.latent_rms))

    def chain_noise_net(self) -> Callable[[torch.Tensor, object], torch.Tensor]:
        """Φθ as the DDIM chain calls it: the module itself, or (``noise_net_kd_grad`` False) the module with its
        weights detached, so the distillation terms reach everything before it but not Φθ's weights (its
        BatchNorm statistics update as usual)."""
        if self.variants.noise_net_kd_grad:
            return self.noise_net
        weights = {name: p.detach() for name, p in self.noise_net.named_parameters()}
        return lambda y, t: functional_call(self.noise_net, weights, (y, t))

    def ddim(self, y: torch.Tensor) -> torch.Tensor:
        """Eq. 6 with the Φθ of ``chain_noise_net``."""
        return self.sampler(self.chain_noise_net(), y)

    def chain(self, z: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The paper's chain, on ``z / rms`` and its result multiplied back with ``unit_scale``."""
        scale = self.scale()
        if scale is None:
            return super().chain(z)
        y, gamma = super().chain(z / scale.to(z.dtype))
        return y * scale.to(y.dtype), gamma

    def transform(self, student: torch.Tensor, denoise: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The paper's transform, on the student logits' z-scores and mapped back (``mean + scale·ẑ``) with
        ``standardize_logits``."""
        if not self.variants.standardize_logits:
            return super().transform(student, denoise)
        z, mean, scale = standardize(student.flatten(1).float())
        out, gamma = super().transform(z.to(student.dtype)[:, :, None, None], denoise)
        flat = out.flatten(1)
        return (mean + scale * flat.float()).to(flat.dtype)[:, :, None, None], gamma

    def diffusion_loss(self, target: torch.Tensor, t: Optional[torch.Tensor] = None,
                       noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Eq. 5 on ``teacher_target(target)``, divided by the running RMS with ``unit_scale``."""
        target = self.teacher_target(target.detach())
        scale = self.scale()
        if scale is not None:
            target = target / scale.to(target.dtype)
        return super().diffusion_loss(target, t, noise)

    def forward(self, student: Optional[torch.Tensor],
                teacher_latent: torch.Tensor) -> Tuple[Optional[torch.Tensor], torch.Tensor]:
        """The paper's step, after the running RMS (``unit_scale``) takes in the teacher target."""
        self.observe(self.teacher_target(teacher_latent))
        return super().forward(student, teacher_latent)


def build_branch(in_channels: int, channels: int, kernel: str, variants: Variants = Variants(),
                 **paper) -> DiffusionBranch:
    """A ``DiffusionBranch`` (``paper``: its keyword arguments) running ``variants``: the paper's class itself
    unless a variant changes the computation; the initialisation variants then set its weights."""
    if variants.change_computation:
        branch: DiffusionBranch = VariantBranch(in_channels, channels, kernel, variants, **paper)
    else:
        branch = DiffusionBranch(in_channels, channels, kernel, **paper)
    if variants.zero_time_embedding:  # drawn N(0, 1) first either way, so every other module's init is unchanged
        nn.init.zeros_(branch.noise_net.time_embedding.weight)
    if variants.adapter_init_gamma and branch.adapter is not None:
        init_adapter_gamma(branch.adapter, variants.adapter_init_gamma)
    return branch
