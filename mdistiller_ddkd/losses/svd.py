"""KDSVD: Lee, Kim & Song, "Self-supervised Knowledge Distillation Using Singular Value Decomposition"
(ECCV 2018), as mdistiller implements it (``KDSVD.py``).

Per stage, a feature map (B, C, H, W) is reshaped to (B, C·H, W) — mdistiller's reshape of NCHW maps (the
authors' TensorFlow code reshapes NHWC maps to (B, H·W, C)); kept, since it is what was benchmarked — and
decomposed by SVD. The teacher keeps its ``k`` leading right-singular vectors ``V_t`` (B, W, k) and its
``k`` leading singular values ``σ_t``, L2-normalised over those ``k``; the student keeps ``k + 3`` vectors,
and for each teacher vector picks the student vector with the largest |cosine|, sign-corrected
(``align_singular_vectors``). Both are scaled by the teacher's ``σ_t``. Between consecutive stages,
the entries of the vectors are related by an RBF kernel ``exp(-(v_i[a] - v_{i-1}[b])² / 8)`` (B, W_i,
W_{i-1}, k); the loss is the squared difference of the student's and the (detached) teacher's kernels,
summed (non-finite entries dropped, as upstream) over everything and divided by the batch size, summed
over stage transitions. Student and teacher maps must have the same width at every stage.

Config (``KDSVD`` node, mdistiller's defaults)::

    KDSVD:
      K: 1                  # teacher singular vectors kept (the student keeps K + 3)
      LOSS:
        CE_WEIGHT: 1.0
        FEAT_WEIGHT: 1.0
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

#: the RBF kernel's denominator (mdistiller: ``exp(-d² / 8)``)
RBF_DENOMINATOR = 8.0


def _finite(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def truncated_svd(feat: torch.Tensor, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(σ, V)`` of ``feat`` (B, C, H, W) viewed as (B, C·H, W), in float32: the ``n`` leading singular values
    (B, n) L2-normalised, and right-singular vectors (B, W, n) unit columns; ``n <= 0`` keeps them all,
    unnormalised. Non-finite entries are zeroed (as upstream)."""
    if feat.dim() != 4:
        raise ValueError(f"KDSVD needs (B, C, H, W) feature maps, got shape {tuple(feat.shape)}")
    b, c, h, w = feat.shape
    _, sigma, vh = torch.linalg.svd(feat.reshape(b, c * h, w).float(), full_matrices=False)
    sigma, v = _finite(sigma), _finite(vh.transpose(-2, -1))
    if n > 0:
        sigma = F.normalize(sigma[:, :n], p=2, dim=1)
        v = F.normalize(v[:, :, :n], p=2, dim=1)
    return sigma, v


def align_singular_vectors(v_student: torch.Tensor, v_teacher: torch.Tensor) -> torch.Tensor:
    """For each teacher vector (column of ``v_teacher`` (B, W, kt)), the student column of ``v_student``
    (B, W, ks) with the largest |cosine|, times the cosine's sign: (B, W, kt). The selection carries no
    gradient (upstream's mask is built from ``eq`` and ``sign``, whose gradients are zero)."""
    with torch.no_grad():
        cosine = v_student.transpose(-2, -1) @ v_teacher
        best = cosine.abs().amax(dim=1, keepdim=True)
        mask = torch.where(cosine.abs() == best, torch.sign(cosine), torch.zeros_like(cosine))
    return v_student @ mask


def stage_rbf(v: torch.Tensor, v_previous: torch.Tensor) -> torch.Tensor:
    """(B, W_i, W_{i-1}, k): ``exp(-(v[b, a, j] - v_previous[b, c, j])² / 8)``."""
    return torch.exp(-(v.unsqueeze(2) - v_previous.unsqueeze(1)).pow(2) / RBF_DENOMINATOR)


def kdsvd_loss(
    feats_student: Sequence[torch.Tensor], feats_teacher: Sequence[torch.Tensor], k: int = 1
) -> torch.Tensor:
    """KDSVD over consecutive stage pairs of ``zip(feats_student, feats_teacher)`` (at least two stages)."""
    if len(feats_student) != len(feats_teacher) or len(feats_student) < 2:
        raise ValueError(f"KDSVD needs equally many (>= 2) student and teacher maps, got {len(feats_student)} "
                         f"and {len(feats_teacher)}")
    total = feats_student[0].new_zeros((), dtype=torch.float32)
    previous = None
    for f_s, f_t in zip(feats_student, feats_teacher):
        if f_s.shape[-1] != f_t.shape[-1]:
            raise ValueError(f"KDSVD needs equal map widths per stage: student {tuple(f_s.shape)}, "
                             f"teacher {tuple(f_t.shape)}")
        sigma_t, v_t = truncated_svd(f_t, k)
        _, v_s = truncated_svd(f_s, k + 3)
        v_s = align_singular_vectors(v_s, v_t)
        scale = sigma_t.unsqueeze(1)
        v_s, v_t = v_s * scale, v_t * scale
        if previous is not None:
            diff = stage_rbf(v_s, previous[0]) - stage_rbf(v_t, previous[1]).detach()
            total = total + _finite(diff.pow(2)).sum()
        previous = (v_s, v_t)
    return total / feats_student[0].shape[0]
