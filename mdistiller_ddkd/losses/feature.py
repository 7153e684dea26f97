"""Feature-based distillation losses as pure functions.

- FitNet (Romero et al., ICLR 2015): mean squared error between a regressed student hint and the teacher's
  guided layer, ``mean (r(s) - t)²`` (config: ``FITNET.HINT_LAYER: 2``, ``FITNET.LOSS.FEAT_WEIGHT: 100.0``).
- VID (Ahn et al., CVPR 2019): negative log-likelihood of the teacher feature under a Gaussian whose mean is
  predicted from the student feature and whose variance is learned per channel,
  ``mean 0.5 (log σ²_c + (t - μ(s))² / σ²_c)`` (config: ``VID.INIT_PRED_VAR: 5.0``, ``VID.EPS: 1.0e-5``,
  ``VID.LOSS.FEAT_WEIGHT: 1.0``).
- PKT (Passalis & Tefas, ECCV 2018): KL divergence between the teacher's and the student's conditional
  probability distributions built from a cosine-similarity kernel over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fitnet_loss(hint_student: torch.Tensor, feat_teacher: torch.Tensor) -> torch.Tensor:
    """FitNet hint loss: mean over all elements of ``(hint_student - feat_teacher)²``.

    ``hint_student`` is the student's feature after the regressor, with the teacher feature's shape.
    """
    if hint_student.shape != feat_teacher.shape:
        raise ValueError(f"hint shape {tuple(hint_student.shape)} != teacher shape {tuple(feat_teacher.shape)}")
    return F.mse_loss(hint_student, feat_teacher)


def vid_loss(mean: torch.Tensor, variance: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """VID: Gaussian negative log-likelihood of ``target`` under ``N(mean, variance)``, averaged over elements.

    ``mean`` and ``target`` have shape (B, C, ...); ``variance`` is per channel, shape (C,), positive.
    Per element the loss is ``0.5 * (log σ²_c + (t - μ)² / σ²_c)``; the constant ``0.5 * log 2π`` is omitted
    (it changes neither gradients nor the optimum).
    """
    if mean.shape != target.shape:
        raise ValueError(f"mean shape {tuple(mean.shape)} != target shape {tuple(target.shape)}")
    if variance.dim() != 1 or variance.shape[0] != mean.shape[1]:
        raise ValueError(f"variance must have shape ({mean.shape[1]},), got {tuple(variance.shape)}")
    var = variance.view(1, -1, *([1] * (mean.dim() - 2)))
    nll = 0.5 * (torch.log(var) + (target - mean) ** 2 / var)
    return nll.mean()


def cosine_kernel_probabilities(features: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """PKT's conditional probabilities: ``K_ij = (cos(x_i, x_j) + 1) / 2`` row-normalised, shape (B, B).

    Rows are L2-normalised with ``eps`` guarding zero vectors (NaN-free); the diagonal is kept.
    """
    x = features.flatten(1)
    x = x / (x.norm(dim=1, keepdim=True) + eps)
    kernel = (x @ x.t() + 1.0) / 2.0
    return kernel / kernel.sum(dim=1, keepdim=True)


def pkt_loss(feat_student: torch.Tensor, feat_teacher: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """PKT: ``mean_ij P^t_ij * log((P^t_ij + eps) / (P^s_ij + eps))`` with cosine-kernel probabilities.

    The mean runs over all B×B entries (as in the PKT paper's reference formulation). Features are
    flattened per sample; student and teacher dimensions may differ.
    """
    p_s = cosine_kernel_probabilities(feat_student, eps)
    p_t = cosine_kernel_probabilities(feat_teacher, eps)
    return (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()
