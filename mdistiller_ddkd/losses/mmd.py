"""NST: Huang & Wang, "Like What You Like: Knowledge Distill via Neuron Selectivity Transfer" (2017).

Each channel of a feature map is one sample of that layer's "neuron selectivity" distribution: its spatial
activation pattern, flattened and L2-normalised (``f_i ∈ R^{HW}``, ``‖f_i‖ = 1``). Student and teacher
distributions are matched by the squared maximum mean discrepancy with the polynomial kernel
``k(x, y) = (xᵀy)²`` (degree 2, c = 0)::

    MMD² = mean_{i,i'} k(t_i, t_i') + mean_{j,j'} k(s_j, s_j') - 2 mean_{i,j} k(s_j, t_i)

each mean also over the batch; the teacher term is a constant (detached). The larger map is average-pooled
to the smaller size first; stage losses are summed (mdistiller's ``NST.py``). Kernel means are computed
through the smaller of the two Gram matrices (``mean_ij (a_iᵀb_j)² = ‖A Bᵀ‖²_F / (Ca Cb)
= <AᵀA, BᵀB>_F / (Ca Cb)``): the same value and gradient as upstream's broadcast over (B, Cb, Ca, HW),
without materialising it.

Config (``NST`` node, mdistiller's defaults)::

    NST:
      LOSS:
        CE_WEIGHT: 1.0
        FEAT_WEIGHT: 50.0
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from .attention import pool_to_common_size


def selectivity_vectors(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, H·W): each channel's flattened spatial map, L2-normalised (eps 1e-12)."""
    return F.normalize(feat.flatten(2), p=2, dim=2)


def polynomial_kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean_{batch, i, j} (a_iᵀ b_j)²`` for ``a`` (B, Ca, N) and ``b`` (B, Cb, N)."""
    n, ca, cb = a.shape[2], a.shape[1], b.shape[1]
    if n * n < ca * cb:  # through the N×N Grams: <AᵀA, BᵀB>_F
        gram_a = a.transpose(1, 2) @ a
        gram_b = b.transpose(1, 2) @ b
        return (gram_a * gram_b).sum() / (a.shape[0] * ca * cb)
    return (a @ b.transpose(1, 2)).pow(2).mean()


def nst_stage_loss(feat_student: torch.Tensor, feat_teacher: torch.Tensor) -> torch.Tensor:
    """One stage's polynomial-kernel MMD² between the student's and teacher's selectivity vectors."""
    feat_student, feat_teacher = pool_to_common_size(feat_student, feat_teacher)
    s, t = selectivity_vectors(feat_student), selectivity_vectors(feat_teacher)
    return polynomial_kernel_mean(t, t).detach() + polynomial_kernel_mean(s, s) - 2 * polynomial_kernel_mean(s, t)


def nst_loss(feats_student: Sequence[torch.Tensor], feats_teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum of :func:`nst_stage_loss` over the stage pairs ``zip(feats_student, feats_teacher)``."""
    if len(feats_student) != len(feats_teacher) or not feats_student:
        raise ValueError(f"NST needs equally many (>= 1) student and teacher maps, got {len(feats_student)} "
                         f"and {len(feats_teacher)}")
    return sum(nst_stage_loss(s, t) for s, t in zip(feats_student, feats_teacher))
