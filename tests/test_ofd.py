"""OFD (Heo et al., ICCV 2019): margins, partial L2 and level weighting against written-out computations;
the distiller's wiring, modules, the pairs it serves and the ones it refuses."""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import torch

from mdistiller_ddkd.distillers.ofd import OFD, batch_statistics, build_connector
from mdistiller_ddkd.engine.cfg import build_default_config, load_config
from mdistiller_ddkd.losses.ofd import ofd_loss, ofd_margin, ofd_partial_l2
from mdistiller_ddkd.models import get_model
from tests.helpers import CIFAR_PAIRS, REPO_ROOT

#: the pairs OFD cannot serve: MobileNetV2 returns no pre-ReLU features (as in mdistiller)
REFUSED = {"res50_mv2", "vgg13_mv2"}


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def gaussian_margin(weight: float, bias: float) -> float:
    """OFD's margin written out: E[x | x < 0] for x ~ N(bias, weight²), −3|weight| when P(x < 0) <= 0.001."""
    s, m = abs(weight), bias
    mass = _normal_cdf(-m / s)
    if mass > 0.001:
        return -s * math.exp(-((m / s) ** 2) / 2) / math.sqrt(2 * math.pi) / mass + m
    return -3 * s


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------ margins
def test_margin_matches_the_gaussian_formula_per_channel():
    weight = torch.tensor([1.0, -0.5, 2.0, 0.3, 1.0, 0.7, 1.0])
    bias = torch.tensor([0.0, 0.2, -1.0, 0.9, 4.0, 3.0 * 0.7, -5.0])  # 5th: P(x<0)=3e-5 -> -3σ
    got = ofd_margin(weight, bias)
    assert got.dtype == torch.float32 and got.shape == (7,)
    want = [gaussian_margin(w, b) for w, b in zip(weight.tolist(), bias.tolist())]
    assert got.tolist() == pytest.approx(want, rel=1e-6, abs=1e-7)
    assert got[0].item() == pytest.approx(-math.sqrt(2 / math.pi), rel=1e-6)  # half-normal mean
    assert got[4].item() == pytest.approx(-3.0)  # the −3σ rule
    assert (got < 0).all()


def test_margin_is_the_conditional_mean_of_negative_responses_by_quadrature():
    for weight, bias in ((1.3, 0.4), (0.6, -0.2), (2.0, 1.5)):
        x = np.linspace(bias - 14 * weight, 0.0, 400001)
        density = np.exp(-0.5 * ((x - bias) / weight) ** 2)
        conditional_mean = np.trapezoid(x * density, x) / np.trapezoid(density, x)
        got = ofd_margin(torch.tensor([weight]), torch.tensor([bias])).item()
        assert got == pytest.approx(conditional_mean, rel=1e-5)


def test_margin_of_a_zero_weight_channel_is_its_constant_value_or_zero():
    got = ofd_margin(torch.tensor([0.0, 0.0]), torch.tensor([-0.7, 0.4]))
    assert got.tolist() == pytest.approx([-0.7, 0.0])


# --------------------------------------------------------------------------------------- partial L2
def _partial_l2_loops(s: torch.Tensor, t: torch.Tensor, m: torch.Tensor) -> float:
    total = 0.0
    b, c, h, w = s.shape
    for n in range(b):
        for ch in range(c):
            margin = float(m[ch])
            for i in range(h):
                for j in range(w):
                    sv, tv = float(s[n, ch, i, j]), float(t[n, ch, i, j])
                    if tv <= margin:
                        total += (sv - margin) ** 2 if sv > margin else 0.0
                    elif tv <= 0:
                        total += (sv - tv) ** 2 if sv > tv else 0.0
                    else:
                        total += (sv - tv) ** 2
    return total / b


def test_partial_l2_matches_explicit_masking_loops():
    g = _gen(0)
    s = torch.randn(2, 3, 3, 2, generator=g, dtype=torch.float64)
    t = torch.randn(2, 3, 3, 2, generator=g, dtype=torch.float64)
    m = torch.tensor([-0.8, -0.3, -1.2], dtype=torch.float64)
    t[0, 0, 0, 0], s[0, 0, 0, 0] = m[0], m[0] + 0.5  # exactly at the margin
    t[1, 2, 1, 1], s[1, 2, 1, 1] = 0.0, -0.1  # target exactly 0, source below
    got = ofd_partial_l2(s, t, m).item()
    assert got == pytest.approx(_partial_l2_loops(s, t, m), rel=1e-12)
    # OFD's own formulation: target max(t, m), counted where s > target or target > 0
    target = torch.max(t, m.view(1, -1, 1, 1))
    own = ((s - target) ** 2 * ((s > target) | (target > 0))).sum() / s.shape[0]
    assert got == pytest.approx(own.item(), rel=1e-12)


def test_partial_l2_invariances():
    g = _gen(1)
    t = torch.randn(4, 5, 3, 3, generator=g)
    m = -torch.rand(5, generator=g) - 0.1
    target = torch.max(t, m.view(1, -1, 1, 1))
    assert ofd_partial_l2(target, t, m).item() == 0.0  # the target itself costs nothing
    lower = torch.where(target <= 0, target - torch.rand(t.shape, generator=g), target)
    assert ofd_partial_l2(lower, t, m).item() == 0.0  # below a non-positive target costs nothing
    s = torch.randn(4, 5, 3, 3, generator=g)
    deeper = torch.where(t <= m.view(1, -1, 1, 1), t - 5.0, t)  # teacher values below the margin
    assert ofd_partial_l2(s, deeper, m).item() == pytest.approx(ofd_partial_l2(s, t, m).item(), rel=1e-6)
    doubled = torch.cat([s, s]), torch.cat([t, t])  # averaged over the batch
    assert ofd_partial_l2(*doubled, m).item() == pytest.approx(ofd_partial_l2(s, t, m).item(), rel=1e-6)
    with pytest.raises(ValueError, match="margins"):
        ofd_partial_l2(s, t, m[:3])


def _pool_loops(t: torch.Tensor, k: int) -> torch.Tensor:
    """Average over non-overlapping k×k blocks, written out."""
    b, c, h, w = t.shape
    out = torch.zeros(b, c, h // k, w // k, dtype=t.dtype)
    for i in range(h // k):
        for j in range(w // k):
            out[:, :, i, j] = sum(t[:, :, i * k + a, j * k + d] for a in range(k) for d in range(k)) / (k * k)
    return out


def test_ofd_loss_pools_the_teacher_and_halves_shallower_levels():
    g = _gen(2)
    sources = [torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64),
               torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64),
               torch.randn(2, 4, 1, 1, generator=g, dtype=torch.float64)]
    targets = [torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64),  # pooled 2x2 -> 4x4
               torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64),  # same size
               torch.randn(2, 4, 4, 4, generator=g, dtype=torch.float64)]  # pooled 4x4 -> 1x1
    margins = [-torch.rand(c, generator=g, dtype=torch.float64) for c in (2, 3, 4)]
    pooled = [_pool_loops(targets[0], 2), targets[1], _pool_loops(targets[2], 4)]
    want = sum(_partial_l2_loops(s, t, m) * w for s, t, m, w in zip(sources, pooled, margins, (0.25, 0.5, 1.0)))
    assert ofd_loss(sources, targets, margins).item() == pytest.approx(want, rel=1e-10)
    with pytest.raises(ValueError):
        ofd_loss(sources, targets[:2], margins)


# ---------------------------------------------------------------------------------------- modules
def test_connector_initial_values_as_ofd():
    torch.manual_seed(0)
    conn = build_connector(64, 128, kernel_size=3)
    conv, bn = conn
    assert conv.bias is None and conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1)
    assert conv.weight.shape == (128, 64, 3, 3)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2.0 / (9 * 128)), rel=0.02)
    assert torch.equal(bn.weight, torch.ones(128)) and torch.equal(bn.bias, torch.zeros(128))
    assert build_connector(5, 7)[0].padding == (0, 0)
    with pytest.raises(ValueError, match="KERNEL_SIZE"):
        build_connector(4, 4, kernel_size=2)


def test_batch_statistics_normalises_by_the_batch_and_keeps_running_estimates():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    net[1].running_mean.fill_(0.3)
    before = copy.deepcopy(net.state_dict())
    x = torch.randn(4, 3, 6, 6)
    with torch.no_grad(), batch_statistics(net):
        out = net(x)
    conv = net[0](x).detach()
    mean, var = conv.mean(dim=(0, 2, 3), keepdim=True), conv.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    torch.testing.assert_close(out, (conv - mean) / torch.sqrt(var + 1e-5))
    assert not net.training and not net[1].training and net[1].track_running_stats
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


# ------------------------------------------------------------------------------------- distiller
def _cfg(teacher: str, student: str, *opts):
    return load_config(None, ["DISTILLER.TYPE", "OFD", "DISTILLER.TEACHER", teacher, "DISTILLER.STUDENT", student,
                              *opts])


def _models(teacher: str, student: str, seed: int = 0):
    torch.manual_seed(seed)
    return get_model(teacher, "cifar100", 100), get_model(student, "cifar100", 100)


def _perturb_bns(model: torch.nn.Module, seed: int) -> None:
    """BN weights/biases away from (1, 0), so margins and the teacher's batch statistics matter."""
    g = _gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))


def test_distillation_term_is_the_pure_loss_on_the_right_tensors():
    teacher, student = _models("resnet8x4", "resnet8")
    _perturb_bns(teacher, 3)
    cfg = _cfg("resnet8x4", "resnet8", "OFD.LOSS.CE_WEIGHT", "0.3", "OFD.LOSS.FEAT_WEIGHT", "0.02",
               "OFD.CONNECTOR.KERNEL_SIZE", "3")
    distiller = OFD.build(student, teacher, cfg, 8)
    distiller.train()
    teacher_state = copy.deepcopy(teacher.state_dict())
    image, target = torch.randn(4, 3, 32, 32, generator=_gen(4)), torch.tensor([1, 5, 7, 9])
    _, losses = distiller(image=image, target=target, epoch=3)
    assert not teacher.training
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())  # running stats kept

    with torch.no_grad():
        logits, feats_s = student(image)
        _, feats_t = copy.deepcopy(teacher).train()(image)  # the teacher as OFD runs it: batch statistics
        sources = [c(f) for c, f in zip(distiller.connectors, feats_s["preact_feats"][1:])]
        bns = teacher.get_bn_before_relu()
        margins = [torch.tensor([gaussian_margin(w, b) for w, b in zip(bn.weight.tolist(), bn.bias.tolist())])
                   for bn in bns]
        want = 0.02 * ofd_loss(sources, feats_t["preact_feats"][1:], margins)
    assert [tuple(c[0].weight.shape) for c in distiller.connectors] == [(64, 16, 3, 3), (128, 32, 3, 3),
                                                                        (256, 64, 3, 3)]
    torch.testing.assert_close(losses["loss_feat"], want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["loss_ce"], 0.3 * torch.nn.functional.cross_entropy(logits, target))
    for mine, ref in zip(distiller.margins, margins):
        torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-7)
    assert not any(k.startswith("margin") for k in distiller.state_dict())  # recomputed from the teacher


def test_distillation_term_alone_gives_the_student_a_gradient():
    teacher, student = _models("resnet8x4", "resnet8")
    distiller = OFD.build(student, teacher, _cfg("resnet8x4", "resnet8"), 8)
    distiller.train()
    _, losses = distiller(image=torch.randn(2, 3, 32, 32, generator=_gen(5)), target=torch.tensor([0, 1]), epoch=1)
    grads = torch.autograd.grad(losses["loss_feat"], list(student.parameters()), allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def _expected_extra(feats_t, feats_s, bns, kernel: int) -> int:
    n = min(len(feats_t) - 1, len(feats_s) - 1, len(bns))
    pairs = zip([f.shape[1] for f in feats_s[-n:]], [f.shape[1] for f in feats_t[-n:]])
    return sum(kernel * kernel * c_s * c_t + 2 * c_t for c_s, c_t in pairs)


@pytest.mark.parametrize("pair", list(CIFAR_PAIRS))
def test_every_pair_builds_and_steps_or_is_refused(pair):
    t_name, s_name = CIFAR_PAIRS[pair]
    teacher, student = _models(t_name, s_name)
    path = os.path.join(REPO_ROOT, "configs", "cifar100", "ofd", f"{pair}.yaml")
    if pair in REFUSED:
        assert not os.path.exists(path)
        with pytest.raises(ValueError, match=f"{s_name}.*pre-ReLU"):
            OFD.build(student, teacher, _cfg(t_name, s_name), 8)
        return
    distiller = OFD.build(student, teacher, load_config(path), 8)
    with torch.no_grad():
        feats_t, feats_s = teacher(torch.zeros(1, 3, 32, 32))[1], student.eval()(torch.zeros(1, 3, 32, 32))[1]
    want = _expected_extra(feats_t["preact_feats"], feats_s["preact_feats"], teacher.get_bn_before_relu(), 1)
    assert distiller.get_extra_parameters() == want
    distiller.train()
    _, losses = distiller(image=torch.randn(2, 3, 32, 32, generator=_gen(6)), target=torch.tensor([3, 4]), epoch=1)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(p.grad is not None for p in distiller.connectors.parameters())


def test_a_teacher_without_bn_before_relu_is_refused():
    teacher, student = _models("ShuffleV2", "resnet8")
    with pytest.raises(ValueError, match="ShuffleV2.*get_bn_before_relu"):
        OFD.build(student, teacher, _cfg("ShuffleV2", "resnet8"), 8)


def test_imagenet_pairs_use_the_three_deepest_stages():
    """mdistiller's r50_mv1 connectors (256->512, 512->1024, 1024->2048); r34_r18 from the probed channels."""
    want = {"r50_mv1": [(512, 256), (1024, 512), (2048, 1024)], "r34_r18": [(128, 128), (256, 256), (512, 512)]}
    for pair, shapes in want.items():
        cfg = load_config(os.path.join(REPO_ROOT, "configs", "imagenet", pair, "ofd.yaml"))
        torch.manual_seed(0)
        teacher = get_model(cfg.DISTILLER.TEACHER, "imagenet", 1000)
        student = get_model(cfg.DISTILLER.STUDENT, "imagenet", 1000)
        distiller = OFD.build(student, teacher, cfg, 8)
        assert [tuple(c[0].weight.shape[:2]) for c in distiller.connectors] == shapes
        assert cfg.OFD.LOSS.FEAT_WEIGHT == 0.0001 and cfg.SOLVER.BATCH_SIZE == 128


def test_registry_defaults_are_mdistillers():
    ofd = build_default_config().OFD
    assert (ofd.LOSS.CE_WEIGHT, ofd.LOSS.FEAT_WEIGHT, ofd.CONNECTOR.KERNEL_SIZE) == (1.0, 0.001, 1)
