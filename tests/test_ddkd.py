"""DDKD and DIFFKD: config, loss composition (eq. 10), gradients, ablation switches, parameter count."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mdistiller_ddkd.distillers import distiller_dict, get_distiller_class
from mdistiller_ddkd.distillers._feature_align import align_spatial
from mdistiller_ddkd.engine.cfg import build_default_config
from tests.numpy_oracles import np_dkd, np_kd


class StandIn(nn.Module):
    """A tiny model with mdistiller's interface: final feature map (B, channels, size, size)."""

    def __init__(self, channels: int, size: int, num_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.pool = nn.AdaptiveAvgPool2d(size)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        feat = F.relu(self.bn(self.pool(self.conv(x))))
        pooled = feat.mean((2, 3))
        return self.fc(pooled), {"feats": [feat], "pooled_feat": pooled}


def make_cfg(method: str = "DDKD", **overrides):
    cfg = build_default_config()
    cfg.defrost()
    for key, value in overrides.items():
        node = cfg[method]
        *path, leaf = key.split(".")
        for p in path:
            node = node[p]
        node[leaf] = value
    return cfg


def build(method="DDKD", teacher=(24, 4), student=(16, 2), seed=0, **overrides):
    torch.manual_seed(seed)
    t, s = StandIn(*teacher), StandIn(*student)
    distiller = get_distiller_class(method)(s, t, make_cfg(method, **overrides))
    return distiller.train()


def batch(seed=1, n=4):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def run(distiller, seed=5, epoch=30):
    image, target = batch()
    torch.manual_seed(seed)
    logits, losses = distiller(image=image, target=target, epoch=epoch)
    return logits, losses


# ------------------------------------------------------------------------------------------------ config
def test_registered_with_config_nodes_and_defaults():
    assert distiller_dict["DDKD"] is get_distiller_class("ddkd")
    assert "DIFFKD" in distiller_dict
    c = build_default_config().DDKD
    assert (c.CE_WEIGHT, c.DIFF_WEIGHT, c.AE_WEIGHT, c.KD_WEIGHT, c.FEAT_WEIGHT) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (c.USE_AE, c.AE_CHANNELS, c.INFERENCE_STEPS, c.TRAIN_TIMESTEPS) == (True, 0, 5, 1000)
    assert (c.LOGIT_LOSS, c.KL_T, c.FEAT_ALIGN) == ("dkd", 1.0, "pool")
    assert c.DENOISE_FEATS and c.DENOISE_LOGITS and c.ADAPTIVE_NOISE
    assert (c.DKD.ALPHA, c.DKD.BETA, c.DKD.T, c.DKD.WARMUP) == (1.0, 8.0, 4.0, 20)
    # DIFFKD's node differs from DDKD's only in the logit loss
    defaults = build_default_config()
    diff = defaults.DIFFKD.clone()
    assert diff.LOGIT_LOSS == "kl"
    diff.LOGIT_LOSS = "dkd"
    assert diff == defaults.DDKD


def test_invalid_choices_are_rejected():
    with pytest.raises(ValueError, match="LOGIT_LOSS"):
        build(LOGIT_LOSS="mse")
    with pytest.raises(ValueError, match="FEAT_ALIGN"):
        build(FEAT_ALIGN="crop")


# -------------------------------------------------------------------------------------- losses and grads
def test_loss_dict_terms_and_total():
    distiller = build()
    logits, losses = run(distiller)
    assert list(losses) == ["loss_ce", "loss_kd_feat", "loss_kd_logit", "loss_diff", "loss_ae"]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    image, target = batch()
    torch.testing.assert_close(logits, distiller.student(image)[0])
    torch.testing.assert_close(losses["loss_ce"], F.cross_entropy(logits, target))


def test_loss_weights_scale_their_terms():
    base = run(build())[1]
    scaled = run(build(CE_WEIGHT=2.0, DIFF_WEIGHT=3.0, AE_WEIGHT=0.5, KD_WEIGHT=4.0, FEAT_WEIGHT=0.25))[1]
    factors = {"loss_ce": 2.0, "loss_kd_feat": 1.0, "loss_kd_logit": 4.0, "loss_diff": 3.0, "loss_ae": 0.5}
    for key, factor in factors.items():
        torch.testing.assert_close(scaled[key], factor * base[key], rtol=1e-5, atol=1e-6)


def test_dkd_warmup_and_beta():
    distiller = build(**{"DKD.WARMUP": 20})
    full = run(distiller, epoch=40)[1]["loss_kd_logit"]
    quarter = run(distiller, epoch=5)[1]["loss_kd_logit"]
    torch.testing.assert_close(quarter, 0.25 * full, rtol=1e-5, atol=1e-6)


def grads(params):
    return [p.grad is not None and p.grad.abs().sum().item() > 0 for p in params]


def test_gradients_reach_student_and_method_modules_not_teacher():
    distiller = build()
    _, losses = run(distiller)
    sum(losses.values()).backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert all(grads(distiller.student.parameters()))
    for branch in (distiller.feat_branch, distiller.logit_branch):
        for module in (branch.proj_in, branch.adapter, branch.noise_net, branch.proj_out):
            assert any(grads(module.parameters())), module
        assert branch.adapter.pred.weight.grad.abs().sum() > 0
    assert all(grads(distiller.autoencoder.parameters()))
    learnable = {id(p) for p in distiller.get_learnable_parameters()}
    assert not learnable & {id(p) for p in distiller.teacher.parameters()}
    assert {id(p) for p in distiller.student.parameters()} <= learnable


def test_teacher_latent_is_detached_for_diffusion_and_feature_losses():
    distiller = build()
    _, losses = run(distiller)
    encoder = list(distiller.autoencoder.encoder.parameters())
    for key in ("loss_diff", "loss_kd_feat", "loss_kd_logit", "loss_ce"):
        g = torch.autograd.grad(losses[key], encoder, retain_graph=True, allow_unused=True)
        assert all(x is None for x in g), key
    # only the AE loss trains the autoencoder, and it does not reach the student or the branches
    g = torch.autograd.grad(losses["loss_ae"], encoder, retain_graph=True)
    assert all(x.abs().sum() > 0 for x in g)
    others = list(distiller.student.parameters()) + list(distiller.feat_branch.parameters())
    assert all(x is None for x in torch.autograd.grad(losses["loss_ae"], others, retain_graph=True, allow_unused=True))
    # the diffusion loss trains only the noise networks
    g = torch.autograd.grad(losses["loss_diff"], list(distiller.student.parameters()), allow_unused=True)
    assert all(x is None for x in g)


def test_student_checkpoint_holds_no_diffusion_module():
    distiller = build()
    fresh = StandIn(16, 2)
    assert list(distiller.student.state_dict()) == list(fresh.state_dict())
    assert distiller.get_extra_parameters() == sum(
        p.numel() for name, p in distiller.named_parameters() if not name.startswith(("student.", "teacher."))
    )
    distiller.eval()
    image, _ = batch()
    torch.testing.assert_close(distiller(image=image), distiller.student(image)[0])


# ------------------------------------------------------------------------- independent recomputation of eq.10
def reference_losses(d, cfg_node, image, target, epoch):
    """The spec's data flow recomputed from the distiller's submodules with our own DDIM, q_sample and
    alignment (drawing random numbers in the spec's order: feature branch, then logit branch)."""
    ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)
    steps = int(cfg_node.INFERENCE_STEPS)
    r = 1000 // (2 * steps)

    def denoise(branch, z):
        if branch.adapter is not None:
            eps = torch.randn(z.shape)
            g = torch.softmax(branch.adapter.pred(branch.adapter.features(z)), 1)[:, 0].view(-1, 1, 1, 1)
            y = g * z + (1 - g) * eps
        else:
            y = z
        for t in [k * r for k in reversed(range(steps))]:
            e = branch.noise_net(y, t)
            x0 = (y - (1 - ac[t]).sqrt().float() * e) / ac[t].sqrt().float()
            prev = ac[t - r] if t >= r else torch.tensor(1.0, dtype=torch.float64)
            y = prev.sqrt().float() * x0 + (1 - prev).sqrt().float() * e
        return branch.proj_out(y)

    def diff_loss(branch, z0):
        t = torch.randint(0, 1000, (z0.shape[0],))
        eps = torch.randn(z0.shape)
        a = ac[t].view(-1, 1, 1, 1)
        noisy = (a.sqrt() * z0.double() + (1 - a).sqrt() * eps.double()).float()
        return ((branch.noise_net(noisy, t) - eps) ** 2).mean()

    ls, fs = d.student(image)
    with torch.no_grad():
        lt, ft = d.teacher(image)
    out = {"loss_ce": cfg_node.CE_WEIGHT * F.cross_entropy(ls, target)}
    diff = 0.0
    if cfg_node.DENOISE_FEATS:
        s_map, t_map = fs["feats"][-1], ft["feats"][-1]
        if s_map.shape[-1] != t_map.shape[-1]:
            small = min(s_map.shape[-1], t_map.shape[-1])
            s_map, t_map = F.adaptive_avg_pool2d(s_map, small), F.adaptive_avg_pool2d(t_map, small)
        if cfg_node.USE_AE:
            latent = d.autoencoder.encoder(t_map)
            out["loss_ae"] = cfg_node.AE_WEIGHT * ((d.autoencoder.decoder(latent) - t_map) ** 2).mean()
            latent = latent.detach()
        else:
            latent = t_map
        den = denoise(d.feat_branch, d.feat_branch.proj_in(s_map))
        out["loss_kd_feat"] = cfg_node.KD_WEIGHT * cfg_node.FEAT_WEIGHT * ((den - latent) ** 2).mean()
        diff = diff + diff_loss(d.feat_branch, latent)
    if cfg_node.DENOISE_LOGITS:
        z = denoise(d.logit_branch, d.logit_branch.proj_in(ls[:, :, None, None])).flatten(1)
        diff = diff + diff_loss(d.logit_branch, lt[:, :, None, None])
    else:
        z = ls
    # the logit term from the independent float64 NumPy oracles, not the package's kd_loss/dkd_loss
    if cfg_node.LOGIT_LOSS == "kl":
        kd = cfg_node.KD_WEIGHT * np_kd(z, lt, cfg_node.KL_T)
    else:
        w = min(epoch / cfg_node.DKD.WARMUP, 1.0)
        k = cfg_node.DKD
        kd = cfg_node.KD_WEIGHT * w * np_dkd(z, lt, target, k.ALPHA, k.BETA, k.T)
    out["loss_kd_logit"] = torch.tensor(kd, dtype=z.dtype)
    if cfg_node.DENOISE_FEATS or cfg_node.DENOISE_LOGITS:
        out["loss_diff"] = cfg_node.DIFF_WEIGHT * diff
    return out


SWITCHES = [
    ("DDKD", {}),
    ("DDKD", {"DENOISE_FEATS": False}),
    ("DDKD", {"DENOISE_LOGITS": False}),
    ("DDKD", {"ADAPTIVE_NOISE": False}),
    ("DDKD", {"USE_AE": False}),
    ("DDKD", {"INFERENCE_STEPS": 3, "AE_CHANNELS": 8}),
    ("DIFFKD", {}),
]


@pytest.mark.parametrize("method,overrides", SWITCHES)
def test_forward_matches_independent_recomputation(method, overrides):
    d = build(method, **overrides)
    node = make_cfg(method, **overrides)[method]
    _, losses = run(d, epoch=10)
    image, target = batch()
    torch.manual_seed(5)
    expected = reference_losses(d, node, image, target, epoch=10)
    assert set(losses) == set(expected)
    for key in expected:
        torch.testing.assert_close(losses[key], expected[key], rtol=2e-4, atol=2e-5, msg=key)


def test_ablation_switches_change_exactly_their_terms():
    base = run(build())[1]
    # off logit branch: DKD on the raw logits; feature terms untouched (feature branch runs first)
    d = build(DENOISE_LOGITS=False)
    assert d.logit_branch is None
    off = run(d)[1]
    for key in ("loss_ce", "loss_kd_feat", "loss_ae"):
        assert torch.equal(off[key], base[key]), key
    image, target = batch()
    logits_s, logits_t = d.student(image)[0], d.teacher(image)[0]
    expected = np_dkd(logits_s, logits_t, target, 1.0, 8.0, 4.0)
    assert off["loss_kd_logit"].item() == pytest.approx(expected, rel=1e-4)
    assert not torch.equal(off["loss_diff"], base["loss_diff"])
    # off feature branch: no feature distillation, no AE, no feature module
    d = build(DENOISE_FEATS=False)
    assert d.feat_branch is None and d.autoencoder is None
    off = run(d)[1]
    assert set(off) == {"loss_ce", "loss_kd_logit", "loss_diff"}
    assert torch.equal(off["loss_ce"], base["loss_ce"])
    # no AE: the latent is the teacher feature itself (Ca = Ct), no loss_ae, CE unchanged
    d = build(USE_AE=False)
    assert d.autoencoder is None and d.feat_branch.proj_in.out_channels == 24
    off = run(d)[1]
    assert "loss_ae" not in off and torch.equal(off["loss_ce"], base["loss_ce"])
    # no adaptive noise: no adapter; AE and CE unchanged
    d = build(ADAPTIVE_NOISE=False)
    assert d.feat_branch.adapter is None and d.logit_branch.adapter is None
    off = run(d)[1]
    for key in ("loss_ce", "loss_ae"):
        assert torch.equal(off[key], base[key]), key
    assert not torch.equal(off["loss_kd_feat"], base["loss_kd_feat"])


def test_diffkd_differs_from_ddkd_only_in_logit_loss():
    ddkd, diffkd = build("DDKD"), build("DIFFKD")
    a, b = run(ddkd)[1], run(diffkd)[1]
    assert list(a) == list(b)
    for key in a:
        if key != "loss_kd_logit":
            assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["loss_kd_logit"], b["loss_kd_logit"])
    # and a DDKD told to use the kl loss is DIFFKD
    c = run(build("DDKD", LOGIT_LOSS="kl"))[1]
    for key in a:
        assert torch.equal(c[key], b[key]), key
    assert ddkd.get_extra_parameters() == diffkd.get_extra_parameters()


# ------------------------------------------------------------------------------------ spatial alignment
def test_align_spatial_pools_larger_map():
    torch.manual_seed(3)
    s, t = torch.randn(2, 5, 2, 2), torch.randn(2, 7, 4, 4)
    a, b = align_spatial(s, t, "pool")
    assert a is s and b.shape == (2, 7, 2, 2)
    torch.testing.assert_close(b, t.view(2, 7, 2, 2, 2, 2).mean((3, 5)))
    b2, a2 = align_spatial(t, s, "pool")
    torch.testing.assert_close(b2, b)
    assert align_spatial(s, s, "pool")[1] is s
    a, b = align_spatial(s, t, "interpolate")
    assert a.shape == (2, 5, 4, 4) and b is t


def test_spatial_alignment_in_distiller():
    # student 4×4 larger than teacher 2×2, and the reverse
    for teacher, student in (((24, 2), (16, 4)), ((24, 4), (16, 2))):
        d = build(teacher=teacher, student=student)
        losses = run(d)[1]
        assert torch.isfinite(sum(losses.values()))
    d = build(FEAT_ALIGN="interpolate")
    assert torch.isfinite(sum(run(d)[1].values()))


# ---------------------------------------------------------------------------------------- parameter count
def conv(cin, cout, k=1):
    return cin * cout * k * k + cout


def bn(c):
    return 2 * c


def bottleneck(c, r):
    m = c // r
    return conv(c, m) + bn(m) + conv(m, m, 3) + bn(m) + conv(m, c) + bn(c)


def spec_extra_parameters(ct, cs, k, ca=None):
    """DDKD's extra parameters from the spec's module list (all convs/linears with bias)."""
    ca = ca or ct // 2
    ae = conv(ct, ca) + bn(ca) + conv(ca, ct)
    feat = (
        conv(cs, ca)  # proj_in
        + bottleneck(ca, 8) + (ca * 2 + 2)  # adapter: bottleneck(r=8), GAP, Linear(C,2)
        + 1280 * ca + 2 * bottleneck(ca, 4) + conv(ca, ca) + bn(ca)  # noise net
        + conv(ca, ca) + bn(ca)  # proj_out
    )
    logit = (
        conv(k, k)
        + conv(k, 2 * k) + bn(2 * k) + conv(2 * k, k) + bn(k) + (k * 2 + 2)
        + 1280 * k + conv(k, 4 * k) + bn(4 * k) + conv(4 * k, k) + bn(k) + conv(k, 4 * k) + bn(4 * k) + conv(4 * k, k)
        + conv(k, k) + bn(k)
    )
    return ae + feat + logit


def test_extra_parameters_match_spec_count_res32x4_res8x4():
    # resnet32x4 -> resnet8x4: both final maps 256×8×8, 100 classes
    torch.manual_seed(0)
    d = get_distiller_class("DDKD")(StandIn(256, 8, 100), StandIn(256, 8, 100), make_cfg())
    assert d.get_extra_parameters() == spec_extra_parameters(256, 256, 100) == 691856


def test_extra_parameters_with_explicit_latent_channels():
    d = build(AE_CHANNELS=8)
    assert d.get_extra_parameters() == spec_extra_parameters(24, 16, 10, ca=8)
