"""DDKD's opt-in variants (docs/ddkd.md#variants): each transform against an independent computation, each
default equal to the paper's method, bad values refused."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mdistiller_ddkd.diffusion import DiffusionBranch
from mdistiller_ddkd.diffusion.variants import VariantBranch, Variants, build_branch, standardize
from mdistiller_ddkd.distillers import get_distiller_class
from mdistiller_ddkd.engine.cfg import build_default_config
from mdistiller_ddkd.errors import ConfigError
from tests.numpy_oracles import np_dkd

VARIANT_DEFAULTS = {"LOGIT_STANDARDIZE": False, "TARGET_SCALE": "none", "NOISE_NET_KD_GRAD": True,
                    "ADAPTER_INIT_GAMMA": 0.0, "TIME_EMBEDDING_INIT": "normal"}


class TinyNet(nn.Module):
    """mdistiller's interface on 8x8 images: logits and the last feature map (B, channels, 2, 2)."""

    def __init__(self, channels: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        feat = F.relu(self.bn(F.adaptive_avg_pool2d(self.conv(x), 2)))
        pooled = feat.mean((2, 3))
        return self.fc(pooled), {"feats": [feat], "pooled_feat": pooled}


def build(seed=0, **keys):
    cfg = build_default_config()
    cfg.defrost()
    for key, value in keys.items():
        cfg.DDKD[key] = value
    torch.manual_seed(seed)
    teacher, student = TinyNet(24), TinyNet(16)
    return get_distiller_class("DDKD")(student, teacher, cfg).train()


def data(n=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_defaults_are_the_papers_method():
    defaults = build_default_config()
    assert {k: defaults.DDKD[k] for k in VARIANT_DEFAULTS} == VARIANT_DEFAULTS
    assert {k: defaults.DIFFKD[k] for k in VARIANT_DEFAULTS} == VARIANT_DEFAULTS
    paper, explicit = build(), build(**VARIANT_DEFAULTS)
    assert list(paper.state_dict()) == list(explicit.state_dict())  # no extra buffer or parameter
    image, target = data()
    torch.manual_seed(3)
    _, a = paper(image=image, target=target, epoch=30)
    torch.manual_seed(3)
    _, b = explicit(image=image, target=target, epoch=30)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.parametrize("method", ["DDKD", "DIFFKD"])
def test_defaults_build_the_papers_branch_class(method):
    cfg = build_default_config()
    torch.manual_seed(0)
    d = get_distiller_class(method)(TinyNet(16), TinyNet(24), cfg)
    assert type(d.feat_branch) is DiffusionBranch and type(d.logit_branch) is DiffusionBranch
    # variants that only change an initialisation keep the paper's class; the others run the variant class
    assert type(build(TIME_EMBEDDING_INIT="zero", ADAPTER_INIT_GAMMA=0.5).logit_branch) is DiffusionBranch
    for keys in ({"TARGET_SCALE": "unit"}, {"NOISE_NET_KD_GRAD": False}):
        d = build(**keys)
        assert type(d.feat_branch) is VariantBranch and type(d.logit_branch) is VariantBranch
    d = build(LOGIT_STANDARDIZE=True)  # a logit-branch variant: the feature branch stays the paper's
    assert type(d.feat_branch) is DiffusionBranch and type(d.logit_branch) is VariantBranch


@pytest.mark.parametrize("key, value, needle", [
    ("TARGET_SCALE", "batch", "TARGET_SCALE must be one of"),
    ("TIME_EMBEDDING_INIT", "uniform", "TIME_EMBEDDING_INIT must be one of"),
    ("ADAPTER_INIT_GAMMA", 1.0, "ADAPTER_INIT_GAMMA must lie in"),
    ("ADAPTER_INIT_GAMMA", -0.5, "ADAPTER_INIT_GAMMA must lie in"),
])
def test_bad_values_are_config_errors(key, value, needle):
    with pytest.raises(ConfigError, match=needle):
        build(**{key: value})


def test_standardize_matches_numpy():
    x = torch.randn(5, 7, dtype=torch.float64) * 6 + 2
    z, mean, std = standardize(x)
    a = x.numpy()
    expected = (a - a.mean(1, keepdims=True)) / (a.std(1, ddof=1, keepdims=True) + 1e-7)
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std.numpy(), a.std(1, ddof=1, keepdims=True) + 1e-7, rtol=1e-12)
    np.testing.assert_allclose((mean + std * z).numpy(), a, rtol=1e-12, atol=1e-12)  # maps back exactly


def _reference_chain(branch, z, steps=5):
    """DDIM (η = 0) from the adapter's start, written out: the spec's eq. 6 over t = 400 .. 0."""
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    r = 1000 // (2 * steps)
    eps = torch.randn(z.shape)
    g = torch.softmax(branch.adapter.pred(branch.adapter.features(z)), 1)[:, 0].view(-1, 1, 1, 1)
    y = g * z + (1 - g) * eps
    for t in [k * r for k in reversed(range(steps))]:
        e = branch.noise_net(y, t)
        prev = ac[t - r] if t >= r else torch.tensor(1.0, dtype=torch.float64)
        y = prev.sqrt().float() * (y - (1 - ac[t]).sqrt().float() * e) / ac[t].sqrt().float() \
            + (1 - prev).sqrt().float() * e
    return y


def _reference_diffusion(branch, z0):
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    t = torch.randint(0, 1000, (z0.shape[0],))
    eps = torch.randn(z0.shape)
    a = ac[t].view(-1, 1, 1, 1)
    noisy = (a.sqrt() * z0.double() + (1 - a).sqrt() * eps.double()).float()
    return ((branch.noise_net(noisy, t) - eps) ** 2).mean()


def test_logit_standardize_recomputed_independently():
    d = build(LOGIT_STANDARDIZE=True, DENOISE_FEATS=False)
    ref = build(LOGIT_STANDARDIZE=True, DENOISE_FEATS=False)
    image, target = data()
    torch.manual_seed(7)
    _, losses = d(image=image, target=target, epoch=30)
    # the reference: numpy z-scores, our own DDIM on them, mapped back with the student's mean and std
    ls = ref.student(image)[0]
    lt = ref.teacher(image)[0].detach()
    a_s, a_t = ls.detach().double().numpy(), lt.double().numpy()

    def z(a):
        return (a - a.mean(1, keepdims=True)) / (a.std(1, ddof=1, keepdims=True) + 1e-7)

    branch = ref.logit_branch
    torch.manual_seed(7)
    zs = torch.from_numpy(z(a_s)).float()[:, :, None, None]
    out = branch.proj_out(_reference_chain(branch, branch.proj_in(zs))).flatten(1).detach().double().numpy()
    mapped = a_s.mean(1, keepdims=True) + (a_s.std(1, ddof=1, keepdims=True) + 1e-7) * out
    diff = _reference_diffusion(branch, torch.from_numpy(z(a_t)).float()[:, :, None, None])
    warm = min(30 / 20, 1.0)
    assert losses["loss_kd_logit"].item() == pytest.approx(warm * np_dkd(mapped, a_t, target, 1.0, 8.0, 4.0),
                                                           rel=1e-4)
    torch.testing.assert_close(losses["loss_diff"], diff, rtol=1e-5, atol=1e-6)
    # the diffusion target and the KD inputs follow the same path in the diagnostics' helpers
    torch.testing.assert_close(d.logit_branch.teacher_target(d.logit_diffusion_target(lt)).flatten(1),
                               torch.from_numpy(z(a_t)).float())


def test_target_scale_unit_running_rms_and_scaled_diffusion():
    torch.manual_seed(0)
    branch = build_branch(6, 4, "1x1", Variants(unit_scale=True)).train()
    plain = DiffusionBranch(6, 4, "1x1").train()
    plain.load_state_dict({k: v for k, v in branch.state_dict().items() if k != "latent_rms"})
    assert float(branch.latent_rms) == 0.0
    targets = [torch.randn(5, 4, 1, 1) * s for s in (7.0, 3.0, 5.0)]
    rms = None
    for tgt in targets:
        branch.observe(tgt)
        batch = math.sqrt(float((tgt.double() ** 2).mean()))
        rms = batch if rms is None else 0.9 * rms + 0.1 * batch
        assert float(branch.latent_rms) == pytest.approx(rms, rel=1e-6)
    branch.eval()
    branch.observe(targets[0] * 100)  # eval: no update
    assert float(branch.latent_rms) == pytest.approx(rms, rel=1e-6)
    branch.train()
    # eq. 5 on target / rms, and the chain on z / rms multiplied back: the unscaled branch given scaled inputs
    tgt = targets[1]
    torch.manual_seed(4)
    scaled = branch.diffusion_loss(tgt)
    torch.manual_seed(4)
    torch.testing.assert_close(scaled, plain.diffusion_loss(tgt / rms), rtol=1e-5, atol=1e-6)
    z = torch.randn(5, 4, 1, 1)
    torch.manual_seed(5)
    y = branch.chain(z)[0]
    torch.manual_seed(5)
    torch.testing.assert_close(y, rms * plain.chain(z / rms)[0], rtol=1e-5, atol=1e-5)


def test_noise_net_kd_grad_off_keeps_values_and_cuts_only_the_kd_path():
    on, off = build(), build(NOISE_NET_KD_GRAD=False)
    image, target = data()
    torch.manual_seed(2)
    _, a = on(image=image, target=target, epoch=30)
    torch.manual_seed(2)
    _, b = off(image=image, target=target, epoch=30)
    for key in a:  # detaching changes no value
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    torch.testing.assert_close(on.logit_branch.state_dict(), off.logit_branch.state_dict())  # BN stats alike
    kd = b["loss_kd_logit"] + b["loss_kd_feat"]
    for branch in (off.feat_branch, off.logit_branch):
        grads = torch.autograd.grad(kd, list(branch.noise_net.parameters()), retain_graph=True, allow_unused=True)
        assert all(g is None or g.abs().sum() == 0 for g in grads)
        grads = torch.autograd.grad(kd, list(branch.proj_in.parameters()), retain_graph=True, allow_unused=True)
        assert all(g is not None and g.abs().sum() > 0 for g in grads)
        grads = torch.autograd.grad(b["loss_diff"], list(branch.noise_net.parameters()), retain_graph=True,
                                    allow_unused=True)
        assert any(g is not None and g.abs().sum() > 0 for g in grads)
    kd_on = a["loss_kd_logit"] + a["loss_kd_feat"]
    grads = torch.autograd.grad(kd_on, list(on.logit_branch.noise_net.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)  # the paper: the KD term trains Φθ too
    student = torch.autograd.grad(kd, list(off.student.parameters()), allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in student)


@pytest.mark.parametrize("gamma", [0.9, 0.25])
def test_adapter_init_gamma(gamma):
    d = build(ADAPTER_INIT_GAMMA=gamma)
    for branch, shape in ((d.feat_branch, (5, 12, 2, 2)), (d.logit_branch, (5, 10, 1, 1))):
        z = torch.randn(shape).contiguous(memory_format=torch.channels_last) * 4
        g = branch.adapter.gamma(z)
        torch.testing.assert_close(g, torch.full((5,), gamma), rtol=0, atol=1e-6)
        noise = torch.randn(shape)
        start, _ = branch.adapter(z, noise)
        torch.testing.assert_close(start, gamma * z + (1 - gamma) * noise, rtol=1e-5, atol=1e-5)


def test_time_embedding_zero_changes_nothing_else():
    paper, zero = build(), build(TIME_EMBEDDING_INIT="zero")
    p, z = paper.state_dict(), zero.state_dict()
    tables = [k for k in p if k.endswith("time_embedding.weight")]
    assert len(tables) == 2
    for key in p:
        if key in tables:
            assert p[key].abs().sum() > 0 and z[key].abs().sum() == 0
        else:
            torch.testing.assert_close(p[key], z[key], rtol=0, atol=0)
    # with a zero table Φθ(y, t) does not depend on t until the table trains
    net = zero.logit_branch.noise_net.eval()
    y = torch.randn(3, 10, 1, 1)
    torch.testing.assert_close(net(y, 0), net(y, 700))
