"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention: Improving the Performance of
Convolutional Neural Networks via Attention Transfer" (ICLR 2017).

A feature map ``F`` (B, C, H, W) becomes a spatial attention vector ``Q = vec(mean_c F_c^p) / ‖·‖₂``
(the channel mean of the p-th power, flattened and L2-normalised per sample). Per stage the loss is the mean
over the batch and the H·W positions of ``(Q_s - Q_t)²``; stage losses are summed. Student and teacher
channels may differ; when the maps differ in size the larger one is average-pooled to the smaller size
first (as mdistiller does). Formulas and conventions follow mdistiller's ``AT.py``.

Config (``AT`` node, mdistiller's defaults)::

    AT:
      P: 2                 # p of the attention map
      LOSS:
        CE_WEIGHT: 1.0
        FEAT_WEIGHT: 1000.0  # weight of the summed stage losses
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F


def pool_to_common_size(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool (B, ·, H, W) maps to their common smallest size ``(min H, min W)``; a map that
    already has it passes unchanged (mdistiller pools the larger map to the smaller one's size)."""
    size = (min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1]))
    if tuple(a.shape[-2:]) != size:
        a = F.adaptive_avg_pool2d(a, size)
    if tuple(b.shape[-2:]) != size:
        b = F.adaptive_avg_pool2d(b, size)
    return a, b


def attention_map(feat: torch.Tensor, p: float = 2) -> torch.Tensor:
    """(B, H·W) attention vectors: ``mean_c feat^p``, flattened, L2-normalised per row (eps 1e-12)."""
    return F.normalize(feat.pow(p).mean(dim=1).flatten(1), p=2, dim=1)


def at_stage_loss(feat_student: torch.Tensor, feat_teacher: torch.Tensor, p: float = 2) -> torch.Tensor:
    """One stage: ``mean_{b, hw} (Q_s - Q_t)²`` after pooling the larger map to the smaller size."""
    feat_student, feat_teacher = pool_to_common_size(feat_student, feat_teacher)
    return (attention_map(feat_student, p) - attention_map(feat_teacher, p)).pow(2).mean()


def at_loss(feats_student: Sequence[torch.Tensor], feats_teacher: Sequence[torch.Tensor], p: float = 2) -> torch.Tensor:
    """Sum of :func:`at_stage_loss` over the stage pairs ``zip(feats_student, feats_teacher)``."""
    if len(feats_student) != len(feats_teacher) or not feats_student:
        raise ValueError(f"AT needs equally many (>= 1) student and teacher maps, got {len(feats_student)} "
                         f"and {len(feats_teacher)}")
    return sum(at_stage_loss(s, t, p) for s, t in zip(feats_student, feats_teacher))
