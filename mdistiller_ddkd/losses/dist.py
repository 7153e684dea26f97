"""DIST: Huang et al., "Knowledge Distillation from A Stronger Teacher" (NeurIPS 2022).

Relations instead of exact probabilities: with ``P = softmax(z / τ)`` the inter-class relation matches each
sample's class distribution (rows) by Pearson correlation, the intra-class relation each class's scores
across the batch (columns)::

    ρ(a, b) = <a - ā, b - b̄> / (‖a - ā‖ ‖b - b̄‖ + 1e-8)          (the authors' code, hunto/DIST_KD)
    L = τ² (β (1 - mean_i ρ(P_s[i,:], P_t[i,:])) + γ (1 - mean_j ρ(P_s[:,j], P_t[:,j])))

Config (``DIST`` node; ``KD_WEIGHT`` multiplies ``L``)::

    DIST:
      CE_WEIGHT: 1.0
      KD_WEIGHT: 2.0
      BETA: 1.0
      GAMMA: 1.0
      TEMPERATURE: 4.0
"""

from __future__ import annotations

import torch


def pearson_correlation(a: torch.Tensor, b: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Pearson correlation between ``a`` and ``b`` along ``dim``, the authors' formula (hunto/DIST_KD):
    ``<a - ā, b - b̄> / (‖a - ā‖ · ‖b - b̄‖ + eps)`` — ``eps`` is added to the product of the norms (constant
    vectors give 0 instead of NaN)."""
    a = a - a.mean(dim=dim, keepdim=True)
    b = b - b.mean(dim=dim, keepdim=True)
    return (a * b).sum(dim=dim) / (a.norm(dim=dim) * b.norm(dim=dim) + eps)


def inter_class_relation(p_student: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    """``1 - mean_i ρ(P_s[i, :], P_t[i, :])`` over the B samples."""
    return 1.0 - pearson_correlation(p_student, p_teacher, dim=1).mean()


def intra_class_relation(p_student: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    """``1 - mean_j ρ(P_s[:, j], P_t[:, j])`` over the C classes."""
    return 1.0 - pearson_correlation(p_student, p_teacher, dim=0).mean()


def dist_loss(
    logits_student: torch.Tensor,
    logits_teacher: torch.Tensor,
    beta: float = 1.0,
    gamma: float = 1.0,
    temperature: float = 4.0,
) -> torch.Tensor:
    """``τ² * (beta * inter + gamma * intra)`` on ``softmax(logits / τ)``."""
    p_s = torch.softmax(logits_student / temperature, dim=1)
    p_t = torch.softmax(logits_teacher / temperature, dim=1)
    t2 = temperature**2
    return t2 * (beta * inter_class_relation(p_s, p_t) + gamma * intra_class_relation(p_s, p_t))
