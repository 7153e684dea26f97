"""Logit-based distillation losses: KD (Hinton et al., 2015) and DKD (Zhao et al., CVPR 2022)."""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F


def _at_least_float32(*tensors: torch.Tensor) -> Tuple[torch.Tensor, ...]:
    """Half-precision logits are upcast: softmax/KL in bf16 loses the small probabilities that matter."""
    return tuple(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in tensors)


def kd_loss(
    logits_student: torch.Tensor, logits_teacher: torch.Tensor, temperature: float, reduction: str = "mean"
) -> torch.Tensor:
    """KL(p_teacher^T || p_student^T) summed over classes, times T², averaged over the batch
    (``reduction="none"``: per sample). Computed in float32 at least (also under bf16/fp16 autocast)."""
    logits_student, logits_teacher = _at_least_float32(logits_student, logits_teacher)
    log_p_s = F.log_softmax(logits_student / temperature, dim=1)
    log_p_t = F.log_softmax(logits_teacher / temperature, dim=1)
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1) * temperature**2
    return kl if reduction == "none" else kl.mean()


def _binary_and_nontarget_log_probs(logits: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """log [p_t, 1 - p_t] (B,2) and the log-distribution over non-target classes (B,K; 0 at the target)."""
    target_mask = F.one_hot(target, logits.shape[1]).bool()
    log_all = torch.logsumexp(logits, dim=1)
    log_nontarget_mass = torch.logsumexp(logits.masked_fill(target_mask, float("-inf")), dim=1)
    log_p_target = logits.gather(1, target[:, None]).squeeze(1) - log_all
    log_binary = torch.stack([log_p_target, log_nontarget_mass - log_all], dim=1)
    log_nontarget = (logits - log_nontarget_mass[:, None]).masked_fill(target_mask, 0.0)
    return log_binary, log_nontarget


def dkd_terms(
    logits_student: torch.Tensor,
    logits_teacher: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    reduction: str = "mean",
) -> Tuple[torch.Tensor, torch.Tensor]:
    """DKD's (TCKD, NCKD), each a KL times T², averaged over the batch (``reduction="none"``: per sample).

    TCKD: KL between the teacher's and student's binary (target, all non-target) distributions.
    NCKD: KL between their distributions over the non-target classes only.
    Computed in float32 at least (also under bf16/fp16 autocast).
    """
    logits_student, logits_teacher = _at_least_float32(logits_student, logits_teacher)
    T = temperature
    bin_s, non_s = _binary_and_nontarget_log_probs(logits_student / T, target)
    bin_t, non_t = _binary_and_nontarget_log_probs(logits_teacher / T, target)
    target_mask = F.one_hot(target, logits_student.shape[1]).bool()
    tckd = (bin_t.exp() * (bin_t - bin_s)).sum(dim=1) * T**2
    p_non_t = non_t.exp().masked_fill(target_mask, 0.0)
    nckd = (p_non_t * (non_t - non_s)).sum(dim=1) * T**2
    if reduction == "none":
        return tckd, nckd
    return tckd.mean(), nckd.mean()


def dkd_loss(
    logits_student: torch.Tensor,
    logits_teacher: torch.Tensor,
    target: torch.Tensor,
    alpha: float,
    beta: float,
    temperature: float,
) -> torch.Tensor:
    """Decoupled KD: ``alpha * TCKD + beta * NCKD``."""
    tckd, nckd = dkd_terms(logits_student, logits_teacher, target, temperature)
    return alpha * tckd + beta * nckd
