"""SP: Tung & Mori, "Similarity-Preserving Knowledge Distillation" (ICCV 2019).

Each network's activations ``A`` (B, ·), flattened per sample, give a B×B similarity matrix
``G = row_normalise(A Aᵀ)`` (every row divided by its L2 norm). The loss is
``‖G_t - G_s‖²_F / B²``: only how the samples of a batch relate to each other is transferred, so student and
teacher shapes may differ freely. mdistiller applies it to the last stage's map (``feats[-1]``) only.

Config (``SP`` node, mdistiller's defaults)::

    SP:
      LOSS:
        CE_WEIGHT: 1.0
        FEAT_WEIGHT: 3000.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def similarity_matrix(feat: torch.Tensor) -> torch.Tensor:
    """(B, B): the Gram matrix of the flattened samples, each row L2-normalised (eps 1e-12)."""
    x = feat.flatten(1)
    return F.normalize(x @ x.t(), p=2, dim=1)


def sp_loss(feat_student: torch.Tensor, feat_teacher: torch.Tensor) -> torch.Tensor:
    """``‖G_t - G_s‖²_F / B²`` (a scalar)."""
    if feat_student.shape[0] != feat_teacher.shape[0]:
        raise ValueError(f"SP needs one batch: {feat_student.shape[0]} student vs {feat_teacher.shape[0]} teacher rows")
    batch = feat_student.shape[0]
    diff = similarity_matrix(feat_teacher) - similarity_matrix(feat_student)
    return diff.pow(2).sum() / (batch * batch)
