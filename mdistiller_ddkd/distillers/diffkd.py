"""DiffKD: Huang et al., "Knowledge Diffusion for Distillation" (NeurIPS 2023), as the ancestor of DDKD:
the same denoising pipeline with the denoised logits distilled by KL at temperature 1 instead of DKD."""

from __future__ import annotations

from .ddkd import DDKD, diffusion_kd_config
from .registry import register_distiller


@register_distiller("DIFFKD", config=diffusion_kd_config("kl"))
class DiffKD(DDKD):
    """DDKD with ``DIFFKD.LOGIT_LOSS = "kl"``; reads the ``DIFFKD`` config node (same keys as ``DDKD``)."""

    config_key = "DIFFKD"
