"""Gap metrics between a student representation and the teacher's: pure functions, tensors in, floats out.

Each one is computed in float64 on the inputs' device, without a graph, so that it can be called on
tensors that are part of a training graph without changing it.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
import torch.nn.functional as F


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, D) in float64, detached."""
    return x.detach().reshape(x.shape[0], -1).double()


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment (Kornblith et al., 2019) of two representations of the same B samples.

    ``CKA(X, Y) = ‖Ỹᵀ X̃‖²_F / (‖X̃ᵀ X̃‖_F · ‖Ỹᵀ Ỹ‖_F)`` with X̃, Ỹ the column-centred (B, D) matrices (each
    sample flattened to a row). Computed through the B×B Gram matrices (cheap for wide feature maps). It is 1
    for identical representations and invariant to orthogonal transforms and isotropic scaling of either
    side; 0 when a side is constant over the batch (no variance to align).
    """
    a, b = _rows(x), _rows(y)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"linear_cka needs the same samples on both sides, got {a.shape[0]} and {b.shape[0]}")
    a = a - a.mean(0, keepdim=True)
    b = b - b.mean(0, keepdim=True)
    ka, kb = a @ a.T, b @ b.T
    cross = (ka * kb).sum()
    norm = ka.norm() * kb.norm()
    return float(cross / norm) if float(norm) > 0 else 0.0


def mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared difference over every element (the feature term of DDKD, eq. 10, without weight)."""
    return float(F.mse_loss(x.detach().double(), y.detach().double()))


def kl_teacher_student(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0) -> float:
    """``KL(p_t ‖ p_s)`` with ``p = softmax(logits / T)``: summed over classes, averaged over samples (no T²)."""
    log_ps = F.log_softmax(student_logits.detach().double() / temperature, dim=1)
    log_pt = F.log_softmax(teacher_logits.detach().double() / temperature, dim=1)
    return float((log_pt.exp() * (log_pt - log_ps)).sum(1).mean())


def top1_agreement(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """Fraction (%) of samples whose arg-max class is the teacher's."""
    same = student_logits.detach().argmax(1) == teacher_logits.detach().argmax(1)
    return 100.0 * float(same.double().mean())


def top1_accuracy(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction (%) of samples whose arg-max class is the target."""
    return 100.0 * float((logits.detach().argmax(1) == target).double().mean())


def mean_row_norm(x: torch.Tensor) -> float:
    """Mean Euclidean norm of the rows of (B, ...) ``x`` (e.g. the scale of a batch of logits)."""
    return float(_rows(x).norm(dim=1).mean())


#: edges of the γ histogram (γ ∈ (0, 1)): ten equal bins
GAMMA_BINS = 10


def histogram_counts(values: torch.Tensor, bins: int = GAMMA_BINS, low: float = 0.0, high: float = 1.0) -> List[int]:
    """Counts of ``values`` in ``bins`` equal bins over [low, high] (the last bin includes ``high``)."""
    v = values.detach().double().flatten().clamp(low, high)
    index = ((v - low) / (high - low) * bins).floor().long().clamp(0, bins - 1)
    return [int(c) for c in torch.bincount(index, minlength=bins).tolist()]


def summary(values: torch.Tensor) -> Dict[str, float]:
    """Mean, sample standard deviation, min and max of a 1-D tensor (std 0 for one value)."""
    v = values.detach().double().flatten()
    std = float(v.std()) if v.numel() > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "min": float(v.min()), "max": float(v.max())}


def bucket_edges(num_timesteps: int, buckets: int) -> Sequence[int]:
    """``buckets + 1`` integer edges splitting ``0..num_timesteps`` into near-equal timestep ranges."""
    return [round(k * num_timesteps / buckets) for k in range(buckets + 1)]
