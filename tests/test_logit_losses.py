"""KD and DKD against independent computations (DKD paper's identity, a hand-computed 3-class case)."""

import math

import numpy as np
import pytest
import torch

from mdistiller_ddkd.losses.logit import dkd_loss, dkd_terms, kd_loss


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _kl(p, q):
    return float(sum(pi * math.log(pi / qi) for pi, qi in zip(p, q) if pi > 0))


def test_kd_loss_matches_explicit_sum():
    torch.manual_seed(0)
    s, t = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    T = 3.0
    expected = np.mean([_kl(_softmax(t[i].numpy() / T), _softmax(s[i].numpy() / T)) for i in range(4)]) * T**2
    assert kd_loss(s, t, T).item() == pytest.approx(expected, rel=1e-10)


def test_kd_loss_is_zero_for_identical_logits_and_positive_otherwise():
    x = torch.randn(3, 5)
    assert kd_loss(x, x, 4.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(x, x.flip(1), 4.0).item() > 0


def test_dkd_identity_kd_equals_tckd_plus_weighted_nckd():
    """KD = TCKD + (1 - p_t) NCKD per sample, p_t the teacher's target probability at the same temperature."""
    torch.manual_seed(1)
    s, t = torch.randn(64, 100, dtype=torch.float64) * 3, torch.randn(64, 100, dtype=torch.float64) * 3
    y = torch.randint(0, 100, (64,))
    for T in (1.0, 4.0):
        tckd, nckd = dkd_terms(s, t, y, T, reduction="none")
        p_t = torch.softmax(t / T, dim=1).gather(1, y[:, None]).squeeze(1)
        torch.testing.assert_close(kd_loss(s, t, T, reduction="none"), tckd + (1 - p_t) * nckd, rtol=1e-9, atol=1e-12)


def test_dkd_hand_computed_three_class_case():
    s = torch.tensor([[2.0, 1.0, 0.0]], dtype=torch.float64)
    t = torch.tensor([[3.0, 0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0])
    T, alpha, beta = 2.0, 1.0, 8.0
    ps, pt = _softmax(s[0].numpy() / T), _softmax(t[0].numpy() / T)
    tckd = _kl([pt[0], 1 - pt[0]], [ps[0], 1 - ps[0]]) * T**2
    # non-target distributions over classes 1 and 2: softmax of the remaining logits
    ns, nt = _softmax(np.array([1.0, 0.0]) / T), _softmax(np.array([0.0, 1.0]) / T)
    nckd = _kl(nt, ns) * T**2
    got_t, got_n = dkd_terms(s, t, y, T)
    assert got_t.item() == pytest.approx(tckd, rel=1e-10)
    assert got_n.item() == pytest.approx(nckd, rel=1e-10)
    assert dkd_loss(s, t, y, alpha, beta, T).item() == pytest.approx(alpha * tckd + beta * nckd, rel=1e-10)


def test_dkd_is_stable_for_extreme_logits_and_has_gradients():
    s = torch.tensor([[80.0, -80.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    t = torch.tensor([[-50.0, 90.0, 0.0], [1.0, 2.0, 3.0]])
    loss = dkd_loss(s, t, torch.tensor([0, 2]), 1.0, 8.0, 4.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_dkd_distiller_warmup_scales_the_kd_term():
    from mdistiller_ddkd.distillers.dkd import warmup_factor

    assert warmup_factor(1, 20) == pytest.approx(0.05)
    assert warmup_factor(20, 20) == 1.0 and warmup_factor(200, 20) == 1.0
    assert warmup_factor(3, 0) == 1.0
