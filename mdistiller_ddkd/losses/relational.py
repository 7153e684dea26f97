"""Relational knowledge distillation (Park et al., CVPR 2019) as pure functions.

Distance-wise loss: Huber (smooth-L1) between the student's and teacher's pairwise-distance matrices, each
divided by its mean off-diagonal distance. Angle-wise loss: Huber between the cosines of the angles formed
by every triplet of samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pairwise_distances(x: torch.Tensor, squared: bool = False, eps: float = 1e-12) -> torch.Tensor:
    """(B, B) Euclidean distances between the rows of ``x`` (flattened per sample).

    Squared distances are clamped below at ``eps`` (NaN-free square-root gradients); ``squared=False``
    returns their square root. The diagonal is exactly zero.
    """
    x = x.flatten(1)
    sq_norm = (x * x).sum(dim=1)
    d2 = (sq_norm[:, None] + sq_norm[None, :] - 2.0 * (x @ x.t())).clamp(min=eps)
    d = d2 if squared else d2.sqrt()
    return d * (1.0 - torch.eye(x.shape[0], device=x.device, dtype=d.dtype))


def _mean_normalised_distances(x: torch.Tensor, squared: bool, eps: float) -> torch.Tensor:
    d = pairwise_distances(x, squared, eps)
    positive = d > 0
    return d / d[positive].mean()


def rkd_distance_loss(
    feat_student: torch.Tensor, feat_teacher: torch.Tensor, squared: bool = False, eps: float = 1e-12
) -> torch.Tensor:
    """Distance-wise RKD: smooth-L1 between mean-normalised distance matrices (mean over B² entries).

    The teacher side carries no gradient. Needs a batch of at least 2.
    """
    with torch.no_grad():
        t_d = _mean_normalised_distances(feat_teacher, squared, eps)
    s_d = _mean_normalised_distances(feat_student, squared, eps)
    return F.smooth_l1_loss(s_d, t_d)


def triplet_angle_cosines(x: torch.Tensor) -> torch.Tensor:
    """(B, B, B) tensor ``A[j, i, k] = <e(x_i - x_j), e(x_k - x_j)>``: the cosine of the angle at vertex
    ``x_j`` of the triangle (x_i, x_j, x_k); ``e`` normalises to unit length (zero vectors stay zero)."""
    x = x.flatten(1)
    diff = F.normalize(x[None, :, :] - x[:, None, :], p=2, dim=2)  # diff[j, i] = e(x_i - x_j)
    return torch.bmm(diff, diff.transpose(1, 2))


def rkd_angle_loss(feat_student: torch.Tensor, feat_teacher: torch.Tensor) -> torch.Tensor:
    """Angle-wise RKD: smooth-L1 between the triplet angle cosines (mean over B³ entries)."""
    with torch.no_grad():
        t_a = triplet_angle_cosines(feat_teacher)
    s_a = triplet_angle_cosines(feat_student)
    return F.smooth_l1_loss(s_a, t_a)


def rkd_loss(
    feat_student: torch.Tensor,
    feat_teacher: torch.Tensor,
    distance_weight: float = 25.0,
    angle_weight: float = 50.0,
    squared: bool = False,
    eps: float = 1e-12,
) -> torch.Tensor:
    """``distance_weight * distance-wise + angle_weight * angle-wise`` RKD loss."""
    loss = distance_weight * rkd_distance_loss(feat_student, feat_teacher, squared, eps)
    return loss + angle_weight * rkd_angle_loss(feat_student, feat_teacher)
