"""OFD: Heo et al., "A Comprehensive Overhaul of Feature Distillation" (ICCV 2019), as pure functions.

The teacher's pre-ReLU feature ``t`` of a channel whose BatchNorm has weight ``γ`` and bias ``β`` is taken to
be Gaussian, ``N(β, γ²)``. Its negative responses are replaced by the channel's *margin*, their expectation

    m = E[x | x < 0] = β - |γ| φ(β/|γ|) / Φ(-β/|γ|)        (−3|γ| when Φ(-β/|γ|) <= 0.001)

and the connector's output ``s`` (the student's pre-ReLU feature after a conv + BN) is pulled towards
``max(t, m)`` with a *partial* L2: no penalty where both are "negative enough" (``s <= max(t, m) <= 0``)::

    d(s, t) = (s - m)²·[s > m, t <= m] + (s - t)²·[s > t, m < t <= 0] + (s - t)²·[t > 0]

summed over channels and positions and averaged over the batch. Levels (shallow to deep, ``n`` of them) are
weighted ``1 / 2^(n-1-i)``: the deepest counts fully, each shallower one half as much as the next. The
teacher feature is average-pooled to the student's spatial size first (mdistiller).

Config (mdistiller's keys and defaults; CIFAR-100 uses 1e-3, i.e. OFD's ``sum / batch / 1000``)::

    DISTILLER: {TYPE: OFD}
    OFD:
      LOSS: {CE_WEIGHT: 1.0, FEAT_WEIGHT: 0.001}   # ImageNet: FEAT_WEIGHT 0.0001 (OFD's / 10000)
      CONNECTOR: {KERNEL_SIZE: 1}
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

#: below this probability of a negative response, the margin is −3σ instead of the conditional mean
MIN_NEGATIVE_MASS = 0.001


def ofd_margin(bn_weight: torch.Tensor, bn_bias: torch.Tensor) -> torch.Tensor:
    """Per-channel margin ``E[x | x < 0]`` for ``x ~ N(bias, |weight|²)``, shape (C,), float32.

    Computed in float64 (OFD evaluates it in Python floats) and cast to float32 as OFD does. A channel with
    ``weight == 0`` is the constant ``bias``: its margin is ``bias`` when negative, else 0 (the −3σ rule).
    """
    std = bn_weight.detach().double().abs()
    mean = bn_bias.detach().double()
    safe_std = torch.where(std > 0, std, torch.ones_like(std))
    z = mean / safe_std
    mass = torch.special.ndtr(-z)  # P(x < 0) = Φ(-β/σ)
    pdf = torch.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    conditional = mean - safe_std * pdf / mass.clamp_min(1e-300)
    margin = torch.where(mass > MIN_NEGATIVE_MASS, conditional, -3.0 * std)
    margin = torch.where(std > 0, margin, mean.clamp_max(0.0))
    return margin.float()


def ofd_partial_l2(source: torch.Tensor, target: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """OFD's partial L2 distance of one level, summed over (C, H, W) and averaged over the batch.

    ``source`` and ``target`` have the same shape (B, C, H, W); ``margin`` has C entries (any shape that
    broadcasts as (1, C, 1, 1)). The target carries no gradient.
    """
    if source.shape != target.shape:
        raise ValueError(f"OFD: source {tuple(source.shape)} and target {tuple(target.shape)} differ in shape")
    margin = margin.reshape(1, -1, *([1] * (source.dim() - 2))).to(source)
    if margin.shape[1] != source.shape[1]:
        raise ValueError(f"OFD: {margin.shape[1]} margins for {source.shape[1]} channels")
    target = target.detach()
    below_margin = (source > margin) & (target <= margin)
    between = (source > target) & (target > margin) & (target <= 0)
    positive = target > 0
    loss = (source - margin).pow(2) * below_margin + (source - target).pow(2) * (between | positive)
    return loss.sum() / source.shape[0]


def ofd_loss(
    sources: Sequence[torch.Tensor], targets: Sequence[torch.Tensor], margins: Sequence[torch.Tensor]
) -> torch.Tensor:
    """OFD over levels (shallow to deep): ``Σ_i d(s_i, pool(t_i), m_i) / 2^(n-1-i)``.

    Each teacher map ``t_i`` is adaptive-average-pooled to its source's spatial size (unchanged when equal).
    """
    if not (len(sources) == len(targets) == len(margins)) or not sources:
        raise ValueError(f"OFD: {len(sources)} sources, {len(targets)} targets, {len(margins)} margins")
    n = len(sources)
    total = sources[0].new_zeros(())
    for i, (s, t, m) in enumerate(zip(sources, targets, margins)):
        if t.shape[-2:] != s.shape[-2:]:
            t = F.adaptive_avg_pool2d(t, s.shape[-2:])
        total = total + ofd_partial_l2(s, t, m) / 2 ** (n - 1 - i)
    return total
