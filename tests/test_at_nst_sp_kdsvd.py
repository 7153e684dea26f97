"""AT, NST, SP and KDSVD losses against independent computations (NumPy, explicit loops, closed forms) and
the invariances that hold for them; the stage pairing their distillers use. Every method on every pair of
Tables 2/3 (and the refusals) is in tests/test_baselines_pairs.py; their wiring in tests/test_wiring.py."""

from __future__ import annotations

import itertools
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.distillers._stages import stage_pairs
from mdistiller_ddkd.engine.cfg import build_default_config, load_config
from mdistiller_ddkd.losses.attention import at_loss, at_stage_loss, attention_map, pool_to_common_size
from mdistiller_ddkd.losses.mmd import nst_loss, nst_stage_loss, polynomial_kernel_mean
from mdistiller_ddkd.losses.similarity import similarity_matrix, sp_loss
from mdistiller_ddkd.losses.svd import align_singular_vectors, kdsvd_loss, truncated_svd
from tests.helpers import CIFAR_PAIRS, REPO_ROOT


def _rand(*shape, seed=0, positive=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    return x.abs() + 0.1 if positive else x


def _block_mean(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Average pooling by integer factors, written out (what adaptive pooling does for exact divisors)."""
    b, c, h, w = x.shape
    fh, fw = h // out_h, w // out_w
    out = np.zeros((b, c, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = x[:, :, i * fh:(i + 1) * fh, j * fw:(j + 1) * fw].mean(axis=(2, 3))
    return out


# ------------------------------------------------------------------------------------------------- AT


def _np_attention(f: np.ndarray, p: float) -> np.ndarray:
    b = f.shape[0]
    q = np.zeros((b, f.shape[2] * f.shape[3]))
    for n in range(b):
        m = np.mean(f[n] ** p, axis=0).reshape(-1)
        q[n] = m / math.sqrt(float((m * m).sum()))
    return q


@pytest.mark.parametrize("p", [2, 3])
def test_attention_map_and_stage_loss_written_out(p):
    s, t = _rand(2, 3, 4, 4, seed=1, positive=True), _rand(2, 5, 2, 2, seed=2, positive=True)
    np.testing.assert_allclose(attention_map(t, p).numpy(), _np_attention(t.numpy(), p), rtol=1e-12)
    # the larger (student) map is average-pooled to the teacher's 2x2 first
    qs, qt = _np_attention(_block_mean(s.numpy(), 2, 2), p), _np_attention(t.numpy(), p)
    expected = sum((qs[b, k] - qt[b, k]) ** 2 for b in range(2) for k in range(4)) / 8
    assert at_stage_loss(s, t, p).item() == pytest.approx(expected, rel=1e-12)
    assert at_stage_loss(t, s, p).item() == pytest.approx(expected, rel=1e-12)  # pooling is symmetric
    # stages are summed
    s2, t2 = _rand(2, 4, 2, 2, seed=3, positive=True), _rand(2, 2, 2, 2, seed=4, positive=True)
    total = at_loss([s, s2], [t, t2], p).item()
    assert total == pytest.approx(expected + at_stage_loss(s2, t2, p).item(), rel=1e-12)


def test_attention_transfer_invariances():
    s, t = _rand(3, 4, 4, 4, seed=5, positive=True), _rand(3, 6, 4, 4, seed=6, positive=True)
    base = at_stage_loss(s, t).item()
    assert base > 0
    scale = torch.tensor([0.5, 3.0, 20.0], dtype=torch.float64).view(3, 1, 1, 1)
    assert at_stage_loss(scale * s, t).item() == pytest.approx(base, rel=1e-10)  # per-sample positive scaling
    assert at_stage_loss(s[:, [2, 0, 3, 1]], t).item() == pytest.approx(base, rel=1e-12)  # channel order
    assert at_stage_loss(torch.cat([s, s], 1), t).item() == pytest.approx(base, rel=1e-12)  # channel count
    assert at_stage_loss(s, s).item() == 0.0
    with pytest.raises(ValueError):
        at_loss([s], [t, t])


def test_attention_gradient_matches_a_direct_formula():
    s = _rand(2, 3, 4, 4, seed=7, positive=True).requires_grad_(True)
    t = _rand(2, 2, 4, 4, seed=8, positive=True)
    (g_pkg,) = torch.autograd.grad(at_stage_loss(s, t, 2), s)

    def direct(x):
        a = (x * x).sum(1) / x.shape[1]
        a = a.reshape(2, -1)
        return a / torch.sqrt((a * a).sum(1, keepdim=True))

    s2 = s.detach().clone().requires_grad_(True)
    (g_ref,) = torch.autograd.grad(((direct(s2) - direct(t)) ** 2).sum() / 32, s2)
    torch.testing.assert_close(g_pkg, g_ref, rtol=1e-10, atol=1e-14)


def test_pool_to_common_size_pools_the_larger_map():
    a, b = _rand(1, 2, 8, 8, seed=9), _rand(1, 3, 4, 4, seed=10)
    pa, pb = pool_to_common_size(a, b)
    assert pb is b and pa.shape == (1, 2, 4, 4)
    np.testing.assert_allclose(pa.numpy(), _block_mean(a.numpy(), 4, 4), rtol=1e-12)


# ------------------------------------------------------------------------------------------------ NST


def _np_mmd(s: np.ndarray, t: np.ndarray) -> float:
    """Squared MMD, polynomial kernel (x.y)^2, between the L2-normalised channel vectors, batch-averaged."""

    def vectors(f):
        v = f.reshape(f.shape[0], f.shape[1], -1)
        return v / np.sqrt((v * v).sum(axis=2, keepdims=True))

    def kmean(a, b):
        total = 0.0
        for n in range(a.shape[0]):
            for i in range(a.shape[1]):
                for j in range(b.shape[1]):
                    total += float(np.dot(a[n, i], b[n, j])) ** 2
        return total / (a.shape[0] * a.shape[1] * b.shape[1])

    vs, vt = vectors(s), vectors(t)
    return kmean(vt, vt) + kmean(vs, vs) - 2 * kmean(vs, vt)


@pytest.mark.parametrize("shape_a,shape_b", [((2, 3, 5), (2, 4, 5)), ((2, 6, 2), (2, 5, 2))])
def test_polynomial_kernel_mean_both_ways(shape_a, shape_b):
    # the first case goes through the channel Gram (N*N >= Ca*Cb), the second through the N×N Grams
    a, b = _rand(*shape_a, seed=11), _rand(*shape_b, seed=12)
    an, bn = a.numpy(), b.numpy()
    expected = np.mean([[[float(np.dot(an[n, i], bn[n, j])) ** 2 for j in range(shape_b[1])]
                         for i in range(shape_a[1])] for n in range(2)])
    assert polynomial_kernel_mean(a, b).item() == pytest.approx(expected, rel=1e-12)


def test_nst_stage_loss_is_the_polynomial_mmd_written_out():
    s, t = _rand(2, 3, 4, 4, seed=13, positive=True), _rand(2, 5, 2, 2, seed=14, positive=True)
    expected = _np_mmd(_block_mean(s.numpy(), 2, 2), t.numpy())
    assert nst_stage_loss(s, t).item() == pytest.approx(expected, rel=1e-10)
    s2, t2 = _rand(2, 2, 3, 3, seed=15), _rand(2, 4, 3, 3, seed=16)
    assert nst_loss([s, s2], [t, t2]).item() == pytest.approx(expected + _np_mmd(s2.numpy(), t2.numpy()), rel=1e-10)


def test_nst_invariances_and_gradients_equal_the_broadcast_formula():
    s = _rand(2, 40, 2, 2, seed=17).requires_grad_(True)  # N*N = 16 < 40*30: the Gram route
    t = _rand(2, 30, 2, 2, seed=18).requires_grad_(True)
    loss = nst_stage_loss(s, t)
    assert loss.item() > 0
    g_s, g_t = torch.autograd.grad(loss, (s, t))

    def broadcast_kernel_mean(a, b):  # upstream's shape: (B, Cb, Ca, N), summed over N
        return (a.unsqueeze(1) * b.unsqueeze(2)).sum(-1).pow(2).mean()

    vs = torch.nn.functional.normalize(s.flatten(2), dim=2)
    vt = torch.nn.functional.normalize(t.flatten(2), dim=2)
    ref = broadcast_kernel_mean(vt, vt).detach() + broadcast_kernel_mean(vs, vs) - 2 * broadcast_kernel_mean(vs, vt)
    r_s, r_t = torch.autograd.grad(ref, (s, t))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(g_s, r_s, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(g_t, r_t, rtol=1e-10, atol=1e-14)  # the teacher-teacher term is detached
    # each channel is normalised: positive per-channel scaling and channel order do not matter
    sd = s.detach()
    scale = torch.linspace(0.5, 4.0, 40, dtype=torch.float64).view(1, 40, 1, 1)
    assert nst_stage_loss(scale * sd, t.detach()).item() == pytest.approx(loss.item(), rel=1e-10)
    assert nst_stage_loss(sd.flip(1), t.detach()).item() == pytest.approx(loss.item(), rel=1e-10)
    assert nst_stage_loss(sd, sd).item() == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------------------- SP


def test_similarity_matrix_and_sp_loss_written_out():
    s, t = _rand(4, 3, 2, 2, seed=19), _rand(4, 5, 1, 1, seed=20)

    def np_g(f):
        x = f.reshape(f.shape[0], -1)
        g = [[float(np.dot(x[i], x[j])) for j in range(len(x))] for i in range(len(x))]
        return np.array([np.array(row) / math.sqrt(sum(v * v for v in row)) for row in g])

    gs, gt = np_g(s.numpy()), np_g(t.numpy())
    np.testing.assert_allclose(similarity_matrix(s).numpy(), gs, rtol=1e-12)
    expected = sum((gt[i, j] - gs[i, j]) ** 2 for i in range(4) for j in range(4)) / 16
    loss = sp_loss(s, t)
    assert loss.dim() == 0 and loss.item() == pytest.approx(expected, rel=1e-12)


def test_sp_invariances():
    s, t = _rand(5, 3, 2, 2, seed=21), _rand(5, 7, 2, 2, seed=22)
    base = sp_loss(s, t).item()
    assert base > 0
    assert sp_loss(4.0 * s, 0.3 * t).item() == pytest.approx(base, rel=1e-10)  # global positive scaling
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    assert sp_loss(s.flatten(1)[:, perm], t).item() == pytest.approx(base, rel=1e-10)  # feature order
    order = torch.tensor([3, 0, 4, 1, 2])
    assert sp_loss(s[order], t[order]).item() == pytest.approx(base, rel=1e-10)  # sample order, both alike
    assert sp_loss(s, s).item() == 0.0
    with pytest.raises(ValueError):
        sp_loss(s, t[:3])


# ---------------------------------------------------------------------------------------------- KDSVD


def _orthonormal(rows, cols, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(rows, cols)))
    return q[:, :cols]


def test_truncated_svd_on_a_known_decomposition():
    c, h, w = 2, 3, 4  # viewed as (C*H, W) = (6, 4)
    u, v = _orthonormal(6, 4, 0), _orthonormal(4, 4, 1)
    sigma = np.array([5.0, 3.0, 2.0, 0.5])
    feat = torch.from_numpy((u * sigma) @ v.T).reshape(1, c, h, w)
    s_out, v_out = truncated_svd(feat, 2)
    np.testing.assert_allclose(s_out.numpy()[0], sigma[:2] / np.linalg.norm(sigma[:2]), rtol=1e-6)
    for j in range(2):  # singular vectors up to sign
        cos = float(np.dot(v_out.numpy()[0, :, j], v[:, j]))
        assert abs(cos) == pytest.approx(1.0, rel=1e-6)
    assert truncated_svd(feat, 6)[1].shape == (1, 4, 4)  # at most min(C*H, W) vectors


def test_align_singular_vectors_picks_the_best_student_vector_with_its_sign():
    e = torch.eye(4, dtype=torch.float64)
    v_student = torch.stack([e[0], -e[2], 0.6 * e[1] + 0.8 * e[3]], dim=1)[None]  # (1, 4, 3)
    v_teacher = torch.stack([e[2], 0.8 * e[1] + 0.6 * e[3]], dim=1)[None]  # (1, 4, 2)
    aligned = align_singular_vectors(v_student, v_teacher)
    torch.testing.assert_close(aligned[0, :, 0], e[2])  # -(-e2): the sign is corrected
    torch.testing.assert_close(aligned[0, :, 1], 0.6 * e[1] + 0.8 * e[3])


def _np_kdsvd_sample(feats_s, feats_t, k, signs):
    """One sample's KDSVD (the batch's sum of squared RBF differences), teacher vector signs fixed by
    ``signs`` (one ±1 per stage and vector): an SVD's vectors are only defined up to sign."""
    total, previous = 0.0, None
    for stage, (fs, ft) in enumerate(zip(feats_s, feats_t)):
        _, s_t, vt_h = np.linalg.svd(ft.reshape(-1, ft.shape[-1]), full_matrices=False)
        _, _, vs_h = np.linalg.svd(fs.reshape(-1, fs.shape[-1]), full_matrices=False)
        v_t = vt_h.T[:, :k] * np.array(signs[stage])
        v_s_all = vs_h.T[:, :k + 3]
        sigma = s_t[:k] / np.linalg.norm(s_t[:k])
        v_s = np.zeros_like(v_t)
        for j in range(v_t.shape[1]):
            cos = v_s_all.T @ v_t[:, j]
            best = int(np.argmax(np.abs(cos)))
            v_s[:, j] = np.sign(cos[best]) * v_s_all[:, best]
        v_s, v_t = v_s * sigma, v_t * sigma
        if previous is not None:
            ps, pt = previous
            for a in range(v_s.shape[0]):
                for b in range(ps.shape[0]):
                    for j in range(v_s.shape[1]):
                        rs = math.exp(-((v_s[a, j] - ps[b, j]) ** 2) / 8)
                        rt = math.exp(-((v_t[a, j] - pt[b, j]) ** 2) / 8)
                        total += (rs - rt) ** 2
        previous = (v_s, v_t)
    return total


def test_kdsvd_loss_matches_numpy_for_some_choice_of_singular_vector_signs():
    k, stages = 1, 3
    shapes_s = [(2, 3, 4, 4), (2, 4, 2, 3), (2, 2, 3, 2)]  # equal widths (4, 3, 2) per stage, free C and H
    shapes_t = [(2, 5, 3, 4), (2, 2, 4, 3), (2, 3, 2, 2)]
    feats_s = [_rand(*sh, seed=30 + i) for i, sh in enumerate(shapes_s)]
    feats_t = [_rand(*sh, seed=40 + i) for i, sh in enumerate(shapes_t)]
    per_sample = []
    for n in range(2):
        got = kdsvd_loss([f[n:n + 1] for f in feats_s], [f[n:n + 1] for f in feats_t], k).item()
        candidates = [
            _np_kdsvd_sample([f[n].numpy() for f in feats_s], [f[n].numpy() for f in feats_t], k,
                             [[sign] for sign in combo])
            for combo in itertools.product((1.0, -1.0), repeat=stages)
        ]
        assert len({round(c, 8) for c in candidates}) > 1  # the signs matter, so a match is informative
        assert min(abs(got - c) for c in candidates) <= 1e-5 * max(abs(got), 1e-6), (got, candidates)
        per_sample.append(got)
    # summed over everything and divided by the batch size: the batch loss is the mean of the samples'
    batch = kdsvd_loss(feats_s, feats_t, k).item()
    assert batch == pytest.approx(sum(per_sample) / 2, rel=1e-5)


def test_kdsvd_gradient_equals_the_upstream_formulation():
    """mdistiller builds the alignment mask inside the graph (from eq and sign); here it is built without
    one. Both give the same gradient: written out with torch.svd, the mask kept in the graph."""

    def direct(feats_s, feats_t, k):
        losses, prev = [], None
        for f_s, f_t in zip(feats_s, feats_t):
            b, c, h, w = f_t.shape
            _, s_t, v_t = torch.svd(f_t.reshape(b, c * h, w))
            bs, cs, hs, ws = f_s.shape
            _, _, v_s = torch.svd(f_s.reshape(bs, cs * hs, ws))
            s_t = torch.nn.functional.normalize(s_t[:, :k], dim=1)
            v_t = torch.nn.functional.normalize(v_t[:, :, :k], dim=1)
            v_s = torch.nn.functional.normalize(v_s[:, :, :k + 3], dim=1)
            cos = v_s.transpose(1, 2) @ v_t
            mask = torch.where(cos.abs() == cos.abs().max(1, keepdim=True)[0], cos.sign(), torch.zeros_like(cos))
            v_s, v_t = (v_s @ mask) * s_t.unsqueeze(1), v_t * s_t.unsqueeze(1)
            if prev is not None:
                rbf_s = torch.exp(-(v_s.unsqueeze(2) - prev[0].unsqueeze(1)) ** 2 / 8)
                rbf_t = torch.exp(-(v_t.unsqueeze(2) - prev[1].unsqueeze(1)) ** 2 / 8)
                losses.append(((rbf_s - rbf_t.detach()) ** 2).sum())
            prev = (v_s, v_t)
        return sum(loss / feats_s[0].shape[0] for loss in losses)

    shapes_t, shapes_s = [(3, 4, 4), (2, 2, 2), (4, 2, 2)], [(5, 4, 4), (3, 3, 2), (2, 3, 2)]
    feats_t = [_rand(2, *sh, seed=60 + i).float() for i, sh in enumerate(shapes_t)]
    ours = [_rand(2, *sh, seed=63 + i).float().requires_grad_(True) for i, sh in enumerate(shapes_s)]
    theirs = [f.detach().clone().requires_grad_(True) for f in ours]
    a, b = kdsvd_loss(ours, feats_t, 1), direct(theirs, feats_t, 1)
    assert a.item() == pytest.approx(b.item(), rel=1e-5) and a.item() > 0
    for g_a, g_b in zip(torch.autograd.grad(a, ours), torch.autograd.grad(b, theirs)):
        assert g_b.abs().sum() > 0
        torch.testing.assert_close(g_a, g_b, rtol=1e-4, atol=1e-6)


def test_kdsvd_invariances_gradient_and_errors():
    feats_s = [_rand(3, 4, 4, 4, seed=50), _rand(3, 6, 2, 2, seed=51)]
    feats_t = [_rand(3, 2, 4, 4, seed=52), _rand(3, 3, 2, 2, seed=53)]
    base = kdsvd_loss(feats_s, feats_t).item()
    assert base > 0
    assert kdsvd_loss([2.5 * f for f in feats_s], feats_t).item() == pytest.approx(base, rel=1e-4)
    assert kdsvd_loss(feats_t, feats_t).item() == pytest.approx(0.0, abs=1e-10)
    student = [f.float().requires_grad_(True) for f in feats_s]
    grads = torch.autograd.grad(kdsvd_loss(student, [f.float() for f in feats_t]), student)
    assert all(torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0
    with pytest.raises(ValueError, match="widths"):
        kdsvd_loss([feats_s[0], _rand(3, 6, 2, 3, seed=54)], feats_t)
    with pytest.raises(ValueError, match=">= 2"):
        kdsvd_loss(feats_s[:1], feats_t[:1])


# ------------------------------------------------------------------------------------------ stage pairing


class Staged(nn.Module):
    """A stand-in network with ``n`` stage maps (the first is the "stem"), all 4×4."""

    def __init__(self, n: int, channels: int = 4) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3 if i == 0 else channels, channels, 3, padding=1) for i in range(n))
        self.fc = nn.Linear(channels, 10)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(x, 4)
        feats = []
        for conv in self.convs:
            x = torch.relu(conv(x))
            feats.append(x)
        pooled = x.mean((2, 3))
        return self.fc(pooled), {"feats": feats, "pooled_feat": pooled}


def test_stage_pairing_skips_the_stem_and_stops_at_the_shorter_network():
    # as mdistiller's zip(feats_s[1:], feats_t[1:])
    pairs = list(zip(*stage_pairs([torch.zeros(1, 1, 1, 1) + i for i in range(5)],
                                  [torch.zeros(1, 1, 1, 1) - i for i in range(4)])))
    assert [(s.item(), t.item()) for s, t in pairs] == [(1.0, -1.0), (2.0, -2.0), (3.0, -3.0)]
    torch.manual_seed(0)
    for method in ("AT", "NST", "KDSVD"):
        cfg = build_default_config()
        cfg.DISTILLER.TYPE = method
        distiller_dict[method](Staged(4), Staged(5), cfg)  # 3 vs 4 stages after the stem: 3 pairs
        with pytest.raises(ValueError, match="stages"):
            distiller_dict[method](Staged(1), Staged(5), cfg)  # nothing after the stem


# ----------------------------------------------------------------------------------------------- configs

#: mdistiller's defaults of the four nodes (shared/reference/mdistiller_cfg_defaults.yaml); upstream's config
#: files for these methods override none of them
UPSTREAM_NODES = {
    "AT": {"P": 2, "LOSS.CE_WEIGHT": 1.0, "LOSS.FEAT_WEIGHT": 1000.0},
    "NST": {"LOSS.CE_WEIGHT": 1.0, "LOSS.FEAT_WEIGHT": 50.0},
    "SP": {"LOSS.CE_WEIGHT": 1.0, "LOSS.FEAT_WEIGHT": 3000.0},
    "KDSVD": {"K": 1, "LOSS.CE_WEIGHT": 1.0, "LOSS.FEAT_WEIGHT": 1.0},
}
KDSVD_UNSERVED = {"res32x4_shuv1", "res32x4_shuv2", "res50_mv2", "vgg13_mv2", "wrn40_2_shuv1"}


def _get(cfg, dotted):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("method", list(UPSTREAM_NODES))
def test_config_files_for_every_pair_the_method_serves(method):
    folder = os.path.join(REPO_ROOT, "configs", "cifar100", method.lower())
    served = {p for p in CIFAR_PAIRS if not (method == "KDSVD" and p in KDSVD_UNSERVED)}
    assert {f[:-5] for f in os.listdir(folder)} == served
    for pair in served:
        teacher, student = CIFAR_PAIRS[pair]
        cfg = load_config(os.path.join(folder, f"{pair}.yaml"))
        assert (cfg.DISTILLER.TYPE, cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT) == (method, teacher, student)
        assert cfg.EXPERIMENT.TAG == f"{method.lower()},{teacher},{student}"
        assert (cfg.EXPERIMENT.PROJECT, cfg.EXPERIMENT.NAME) == ("cifar100_baselines", "")
        # the CRD benchmark's schedule: lr 0.05 (0.01 for ShuffleNet/MobileNet students), wd 5e-4, 240 epochs
        assert cfg.SOLVER.LR == (0.01 if student in ("ShuffleV1", "ShuffleV2", "MobileNetV2") else 0.05)
        assert (cfg.SOLVER.WEIGHT_DECAY, cfg.SOLVER.EPOCHS, cfg.SOLVER.BATCH_SIZE) == (0.0005, 240, 64)
        for key, value in UPSTREAM_NODES[method].items():
            assert _get(cfg[method], key) == value, (pair, key)


@pytest.mark.parametrize("pair,teacher,student", [("r34_r18", "ResNet34", "ResNet18"),
                                                  ("r50_mv1", "ResNet50", "MobileNetV1")])
def test_imagenet_at_configs_as_upstream(pair, teacher, student):
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "imagenet", pair, "at.yaml"))
    assert (cfg.DISTILLER.TYPE, cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT) == ("AT", teacher, student)
    assert (cfg.DATASET.TYPE, cfg.DATASET.NUM_WORKERS, cfg.DATASET.TEST.BATCH_SIZE) == ("imagenet", 32, 128)
    assert (cfg.SOLVER.BATCH_SIZE, cfg.SOLVER.EPOCHS, cfg.SOLVER.LR) == (512, 100, 0.2)
    assert (list(cfg.SOLVER.LR_DECAY_STAGES), cfg.SOLVER.WEIGHT_DECAY) == ([30, 60, 90], 0.0001)
    assert (cfg.LOG.TENSORBOARD_FREQ, cfg.LOG.SAVE_CHECKPOINT_FREQ) == (50, 10)
    assert (cfg.AT.P, cfg.AT.LOSS.FEAT_WEIGHT) == (2, 1000.0)
