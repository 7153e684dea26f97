"""The baseline losses (FitNet, VID, RKD, PKT, DIST) against independent, written-out computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdistiller_ddkd.distillers.fitnet import HintRegressor
from mdistiller_ddkd.distillers.vid import VIDRegressor
from mdistiller_ddkd.losses.dist import dist_loss, inter_class_relation, intra_class_relation, pearson_correlation
from mdistiller_ddkd.losses.feature import cosine_kernel_probabilities, fitnet_loss, pkt_loss, vid_loss
from mdistiller_ddkd.losses.relational import (
    pairwise_distances,
    rkd_angle_loss,
    rkd_distance_loss,
    rkd_loss,
    triplet_angle_cosines,
)


def _huber(a: float, b: float) -> float:
    d = abs(a - b)
    return 0.5 * d * d if d < 1.0 else d - 0.5


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- FitNet


def test_fitnet_mse_matches_explicit_sum():
    g = _gen(0)
    a = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64)
    expected = sum((x - y) ** 2 for x, y in zip(a.flatten().tolist(), b.flatten().tolist())) / a.numel()
    assert fitnet_loss(a, b).item() == pytest.approx(expected, rel=1e-12)
    assert fitnet_loss(a, a).item() == 0.0
    with pytest.raises(ValueError):
        fitnet_loss(a, b[:, :2])


# the benchmarked ConvReg: (student (C, H, W), teacher (C, H, W)) -> (kind, conv class, kernel, stride, padding)
REGRESSOR_CASES = {
    "equal": ((8, 4, 4), (6, 4, 4), "conv_valid", torch.nn.Conv2d, (1, 1), (1, 1), (0, 0)),
    "student twice as large": ((8, 8, 8), (6, 4, 4), "conv3x3_stride2", torch.nn.Conv2d, (3, 3), (2, 2), (1, 1)),
    "student half as large": ((8, 2, 2), (6, 4, 4), "transposed4x4_stride2", torch.nn.ConvTranspose2d, (4, 4),
                              (2, 2), (1, 1)),
    "student otherwise larger": ((8, 7, 6), (6, 4, 4), "conv_valid", torch.nn.Conv2d, (4, 3), (1, 1), (0, 0)),
    "student smaller, not by 2 (fallback)": ((8, 3, 3), (6, 4, 4), "resize_conv1x1", torch.nn.Conv2d, (1, 1),
                                            (1, 1), (0, 0)),
}


@pytest.mark.parametrize("case", list(REGRESSOR_CASES))
def test_fitnet_regressor_is_the_benchmarked_convreg(case):
    s_shape, t_shape, kind, conv_cls, kernel, stride, padding = REGRESSOR_CASES[case]
    torch.manual_seed(0)
    reg = HintRegressor(s_shape, t_shape)
    assert reg.kind == kind and type(reg.conv) is conv_cls
    assert (reg.conv.kernel_size, reg.conv.stride, reg.conv.padding) == (kernel, stride, padding)
    assert reg.conv.bias is not None and reg.conv.bias.shape == (t_shape[0],)  # with bias, as upstream
    assert isinstance(reg.bn, torch.nn.BatchNorm2d) and reg.bn.num_features == t_shape[0]
    x = torch.randn(3, *s_shape)
    out = reg.train()(x)
    assert out.shape == (3, *t_shape)
    # conv, then BatchNorm on batch statistics (weight 1, bias 0 at init), then ReLU
    y = x
    if kind == "resize_conv1x1":
        y = F.interpolate(x, size=t_shape[1:], mode="bilinear", align_corners=False)
    y = reg.conv(y)
    mean, var = y.mean((0, 2, 3), keepdim=True), y.var((0, 2, 3), unbiased=False, keepdim=True)
    torch.testing.assert_close(out, torch.relu((y - mean) / torch.sqrt(var + reg.bn.eps)))


def test_fitnet_1x1_regressor_is_a_per_position_linear_map_with_bias():
    torch.manual_seed(1)
    reg = HintRegressor((3, 2, 2), (2, 2, 2))
    x = torch.randn(1, 3, 2, 2, dtype=torch.float64)
    w, b = reg.conv.weight.detach().double(), reg.conv.bias.detach().double()
    for i in range(2):
        for j in range(2):
            for o in range(2):
                expected = sum(w[o, c, 0, 0].item() * x[0, c, i, j].item() for c in range(3)) + b[o].item()
                got = F.conv2d(x, w, b)[0, o, i, j].item()
                assert got == pytest.approx(expected, rel=1e-12)
    assert reg.conv(x.float()).shape == (1, 2, 2, 2)


# ---------------------------------------------------------------- VID


def test_vid_gaussian_nll_written_out():
    g = _gen(1)
    mean = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)
    target = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)
    variance = torch.tensor([0.5, 2.0, 5.0], dtype=torch.float64)
    total, count = 0.0, 0
    for b in range(2):
        for c in range(3):
            for h in range(2):
                for w in range(2):
                    mu, t, var = mean[b, c, h, w].item(), target[b, c, h, w].item(), variance[c].item()
                    # -log N(t; mu, var) without the 0.5*log(2*pi) constant
                    density = math.exp(-((t - mu) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)
                    total += -math.log(density) - 0.5 * math.log(2 * math.pi)
                    count += 1
    assert vid_loss(mean, variance, target).item() == pytest.approx(total / count, rel=1e-10)


def test_vid_minimised_by_true_mean_and_variance():
    g = _gen(2)
    target = torch.randn(4, 2, 3, 3, generator=g, dtype=torch.float64)
    best = vid_loss(target, torch.full((2,), 1e-3, dtype=torch.float64), target)
    worse = vid_loss(target + 0.1, torch.full((2,), 1e-3, dtype=torch.float64), target)
    assert best < worse
    # for a fixed residual r, the optimal variance is r² (d/dσ² of log σ² + r²/σ² vanishes there)
    resid = torch.full((1, 1, 1, 1), 0.3, dtype=torch.float64)
    losses = [vid_loss(torch.zeros_like(resid), torch.tensor([v], dtype=torch.float64), resid).item()
              for v in (0.05, 0.09, 0.2)]
    assert losses[1] < losses[0] and losses[1] < losses[2]


@pytest.mark.parametrize("init_pred_var,eps", [(5.0, 1e-5), (2.0, 1e-3)])
def test_vid_regressor_initial_variance_and_no_bias(init_pred_var, eps):
    reg = VIDRegressor(4, 3, init_pred_var, eps)
    # upstream's initial parameter log(exp(v - eps) - 1), so that softplus(alpha) + eps = v
    alpha0 = float(np.log(np.exp(np.float64(init_pred_var) - eps) - 1.0))
    assert torch.allclose(reg.alpha.detach().double(), torch.full((3,), alpha0, dtype=torch.float64), rtol=1e-6)
    assert torch.allclose(reg.variance().detach().double(), torch.full((3,), init_pred_var, dtype=torch.float64),
                          rtol=1e-6)
    convs = [m for m in reg.mean if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(1, 1)] * 3 and all(c.bias is None for c in convs)
    assert [(c.in_channels, c.out_channels) for c in convs] == [(4, 3), (3, 3), (3, 3)]
    # the variances are parameters of the module (trained, unlike mdistiller's plain list)
    assert any(p is reg.alpha for p in reg.parameters())
    mean, var = reg(torch.randn(2, 4, 2, 2))
    vid_loss(mean, var, torch.randn(2, 3, 2, 2)).backward()
    assert reg.alpha.grad is not None and reg.alpha.grad.abs().sum() > 0


def test_vid_rejects_an_initial_variance_below_eps():
    with pytest.raises(ValueError, match="INIT_PRED_VAR"):
        VIDRegressor(4, 3, 1e-6, 1e-5)


# ---------------------------------------------------------------- RKD


def _loop_distances(x: torch.Tensor, squared: bool, eps: float):
    n = x.shape[0]
    d = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                sq = sum((x[i, k].item() - x[j, k].item()) ** 2 for k in range(x.shape[1]))
                sq = max(sq, eps)
                d[i][j] = sq if squared else math.sqrt(sq)
    off = [d[i][j] for i in range(n) for j in range(n) if i != j]
    mean = sum(off) / len(off)
    return [[v / mean for v in row] for row in d]


def _loop_angles(x: torch.Tensor):
    n = x.shape[0]
    pts = [x[i].tolist() for i in range(n)]

    def unit(v):
        norm = math.sqrt(sum(c * c for c in v))
        return [c / norm for c in v] if norm > 1e-12 else [0.0] * len(v)

    out = {}
    for j in range(n):
        for i in range(n):
            for k in range(n):
                e_ij = unit([a - b for a, b in zip(pts[i], pts[j])])
                e_kj = unit([a - b for a, b in zip(pts[k], pts[j])])
                out[(j, i, k)] = sum(a * b for a, b in zip(e_ij, e_kj))
    return out


@pytest.mark.parametrize("squared", [False, True])
def test_rkd_distance_matches_loops(squared):
    g = _gen(3)
    s = torch.randn(5, 4, generator=g, dtype=torch.float64)
    t = torch.randn(5, 6, generator=g, dtype=torch.float64)
    ds, dt = _loop_distances(s, squared, 1e-12), _loop_distances(t, squared, 1e-12)
    expected = sum(_huber(ds[i][j], dt[i][j]) for i in range(5) for j in range(5)) / 25
    got = rkd_distance_loss(s, t, squared=squared, eps=1e-12).item()
    assert got == pytest.approx(expected, rel=1e-9)
    raw = pairwise_distances(s, squared=squared)
    assert torch.all(raw.diagonal() == 0)


def test_rkd_eps_clamps_tiny_distances():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]], dtype=torch.float64)
    d = pairwise_distances(x, squared=False, eps=1e-4)
    assert d[0, 1].item() == pytest.approx(1e-2)
    assert d[0, 2].item() == pytest.approx(5.0)


def test_rkd_angles_match_loops():
    g = _gen(4)
    s = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.randn(4, 5, generator=g, dtype=torch.float64)
    a_s, a_t = _loop_angles(s), _loop_angles(t)
    cos = triplet_angle_cosines(s)
    for (j, i, k), v in a_s.items():
        assert cos[j, i, k].item() == pytest.approx(v, abs=1e-12)
    expected = sum(_huber(a_s[key], a_t[key]) for key in a_s) / len(a_s)
    assert rkd_angle_loss(s, t).item() == pytest.approx(expected, rel=1e-9)
    # a right angle: the triangle (1,0), (0,0), (0,1) has cos 0 at the origin
    right = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert triplet_angle_cosines(right)[1, 0, 2].item() == pytest.approx(0.0, abs=1e-12)


def test_rkd_invariant_to_feature_scaling_and_zero_for_same_structure():
    g = _gen(5)
    s = torch.randn(6, 8, generator=g, dtype=torch.float64)
    t = torch.randn(6, 8, generator=g, dtype=torch.float64)
    base = rkd_loss(s, t).item()
    assert base > 0
    assert rkd_loss(3.7 * s, t).item() == pytest.approx(base, rel=1e-9)
    assert rkd_loss(s, 0.2 * t).item() == pytest.approx(base, rel=1e-9)
    # a scaled, rotated and translated copy has identical relations
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    assert rkd_loss(2.5 * s @ q + 1.0, s).item() == pytest.approx(0.0, abs=1e-12)


def test_rkd_gradient_reaches_student_only():
    g = _gen(6)
    s = torch.randn(5, 4, generator=g, requires_grad=True)
    t = torch.randn(5, 4, generator=g, requires_grad=True)
    rkd_loss(s, t).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0
    assert t.grad is None


# ---------------------------------------------------------------- PKT


def test_pkt_matches_explicit_sums():
    g = _gen(7)
    s = torch.randn(4, 3, generator=g, dtype=torch.float64)
    t = torch.randn(4, 5, generator=g, dtype=torch.float64)
    eps = 1e-7

    def probs(x):
        n = x.shape[0]
        rows = [x[i].tolist() for i in range(n)]
        norms = [math.sqrt(sum(v * v for v in r)) + eps for r in rows]
        k = [[(sum(a * b for a, b in zip(rows[i], rows[j])) / (norms[i] * norms[j]) + 1) / 2 for j in range(n)]
             for i in range(n)]
        return [[k[i][j] / sum(k[i]) for j in range(n)] for i in range(n)]

    ps, pt = probs(s), probs(t)
    expected = sum(pt[i][j] * math.log((pt[i][j] + eps) / (ps[i][j] + eps)) for i in range(4) for j in range(4)) / 16
    assert pkt_loss(s, t).item() == pytest.approx(expected, rel=1e-9)
    p = cosine_kernel_probabilities(s)
    assert torch.allclose(p.sum(dim=1), torch.ones(4, dtype=torch.float64))


def test_pkt_zero_for_identical_and_scale_invariant():
    g = _gen(8)
    s = torch.randn(6, 10, generator=g, dtype=torch.float64)
    t = torch.randn(6, 10, generator=g, dtype=torch.float64)
    assert pkt_loss(s, s).item() == pytest.approx(0.0, abs=1e-12)
    assert pkt_loss(s, t).item() > 0
    assert pkt_loss(5.0 * s, t).item() == pytest.approx(pkt_loss(s, t).item(), rel=1e-6)


# ---------------------------------------------------------------- DIST


def _pearson_np(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _softmax_np(z: np.ndarray, t: float) -> np.ndarray:
    e = np.exp(z / t - (z / t).max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_dist_matches_numpy_pearson():
    rng = np.random.default_rng(9)
    zs = rng.normal(size=(5, 7)) * 3
    zt = rng.normal(size=(5, 7)) * 3
    tau, beta, gamma = 4.0, 1.5, 0.5
    ps, pt = _softmax_np(zs, tau), _softmax_np(zt, tau)
    inter = 1 - np.mean([_pearson_np(ps[i], pt[i]) for i in range(5)])
    intra = 1 - np.mean([_pearson_np(ps[:, j], pt[:, j]) for j in range(7)])
    expected = tau**2 * (beta * inter + gamma * intra)
    got = dist_loss(torch.from_numpy(zs), torch.from_numpy(zt), beta, gamma, tau).item()
    assert got == pytest.approx(expected, rel=1e-6)
    assert inter_class_relation(torch.from_numpy(ps), torch.from_numpy(pt)).item() == pytest.approx(inter, rel=1e-6)
    assert intra_class_relation(torch.from_numpy(ps), torch.from_numpy(pt)).item() == pytest.approx(intra, rel=1e-6)


def test_dist_zero_for_identical_logits_and_invariant_to_affine_prob_maps():
    g = _gen(10)
    z = torch.randn(6, 10, generator=g, dtype=torch.float64)
    # zero up to the eps in the denominator (the authors' formula: eps / (‖a‖‖b‖ + eps) per relation)
    assert dist_loss(z, z).item() == pytest.approx(0.0, abs=1e-3)
    assert dist_loss(z, torch.randn(6, 10, generator=g, dtype=torch.float64)).item() > 0.1
    # Pearson relations ignore positive scaling and shifting of the probabilities (again up to eps)
    p = torch.softmax(z / 4, dim=1)
    assert inter_class_relation(3 * p + 0.1, p).item() == pytest.approx(0.0, abs=1e-4)
    assert intra_class_relation(0.5 * p - 0.2, p).item() == pytest.approx(0.0, abs=1e-4)


def _authors_pearson(a: np.ndarray, b: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """hunto/DIST_KD: cosine of the row-centred vectors with eps ADDED to the product of the norms."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / (np.sqrt((a * a).sum(axis=1)) * np.sqrt((b * b).sum(axis=1)) + eps)


def test_dist_pearson_adds_eps_to_the_product_of_norms():
    rng = np.random.default_rng(11)
    # norms ~1e-5: the product (~1e-10) is far below eps = 1e-8, so adding eps shrinks the correlation ~100x,
    # while clamping each norm at eps would change nothing
    a, b = rng.normal(size=(4, 6)) * 1e-5, rng.normal(size=(4, 6)) * 1e-5
    expected = _authors_pearson(a, b)
    got = pearson_correlation(torch.from_numpy(a), torch.from_numpy(b), dim=1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    plain = _authors_pearson(a, b, eps=0.0)
    assert np.all(np.abs(expected) < 0.05 * np.abs(plain))
    # along dim 0 it is the same formula on the transpose; constant vectors give 0, not NaN
    np.testing.assert_allclose(pearson_correlation(torch.from_numpy(a), torch.from_numpy(b), dim=0).numpy(),
                               _authors_pearson(a.T, b.T), rtol=1e-10)
    assert pearson_correlation(torch.ones(2, 3), torch.rand(2, 3)).abs().max().item() == 0.0


def test_dist_loss_is_the_authors_formula_in_float64():
    rng = np.random.default_rng(12)
    tau, beta, gamma = 4.0, 1.5, 0.5
    # tiny logits: near-uniform probabilities, whose centred norms make eps matter in the intra-class term
    for scale in (3.0, 1e-4):
        zs, zt = rng.normal(size=(5, 7)) * scale, rng.normal(size=(5, 7)) * scale
        ps, pt = _softmax_np(zs, tau), _softmax_np(zt, tau)
        inter = 1 - _authors_pearson(ps, pt).mean()
        intra = 1 - _authors_pearson(ps.T, pt.T).mean()
        expected = tau**2 * (beta * inter + gamma * intra)
        got = dist_loss(torch.from_numpy(zs), torch.from_numpy(zt), beta, gamma, tau).item()
        assert got == pytest.approx(expected, rel=1e-10)
