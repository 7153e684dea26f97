"""Independent float64 NumPy oracles of the logit losses (KL-KD and DKD), written from the papers'
definitions, for tests that must not check the package against its own ``kd_loss``/``dkd_loss``."""

from __future__ import annotations

import numpy as np


def _as_np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max()
    return z - (m + np.log(np.exp(z - m).sum()))


def np_kd(logits_student, logits_teacher, temperature: float) -> float:
    """Hinton et al.: ``T² · mean_batch Σ_c p_t log(p_t / p_s)`` with ``p = softmax(z / T)``."""
    s, t = _as_np(logits_student), _as_np(logits_teacher)
    total = 0.0
    for zs, zt in zip(s, t):
        log_ps, log_pt = _log_softmax(zs / temperature), _log_softmax(zt / temperature)
        total += float((np.exp(log_pt) * (log_pt - log_ps)).sum())
    return total / len(s) * temperature**2


def np_dkd_terms(logits_student, logits_teacher, target, temperature: float):
    """Zhao et al.: per-batch means of TCKD (KL of the binary [target, rest] distributions) and NCKD (KL of
    the distributions over the non-target classes), each times T²."""
    s, t = _as_np(logits_student), _as_np(logits_teacher)
    y = [int(v) for v in _as_np(target)]
    tckd = nckd = 0.0
    for zs, zt, label in zip(s, t, y):
        log_ps, log_pt = _log_softmax(zs / temperature), _log_softmax(zt / temperature)
        others = [c for c in range(len(zs)) if c != label]
        b_s = np.array([np.exp(log_ps[label]), np.exp(log_ps[others]).sum()])
        b_t = np.array([np.exp(log_pt[label]), np.exp(log_pt[others]).sum()])
        tckd += float((b_t * np.log(b_t / b_s)).sum())
        q_s, q_t = _log_softmax(zs[others] / temperature), _log_softmax(zt[others] / temperature)
        nckd += float((np.exp(q_t) * (q_t - q_s)).sum())
    n = len(s)
    return tckd / n * temperature**2, nckd / n * temperature**2


def np_dkd(logits_student, logits_teacher, target, alpha: float, beta: float, temperature: float) -> float:
    """``alpha · TCKD + beta · NCKD``."""
    tckd, nckd = np_dkd_terms(logits_student, logits_teacher, target, temperature)
    return alpha * tckd + beta * nckd
