"""ReviewKD (Chen et al., CVPR 2021): HCL against written-out pyramid pooling, ABF fusion by hand, the
distiller's wiring and warm-up, the config checks and every CIFAR pair."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.nn.functional as F

from mdistiller_ddkd.distillers.reviewkd import ABF, ReviewKD
from mdistiller_ddkd.engine.cfg import build_default_config, load_config
from mdistiller_ddkd.losses.review import hcl_level, hcl_loss
from mdistiller_ddkd.models import get_model
from tests.helpers import CIFAR_PAIRS, REPO_ROOT

#: REVIEWKD_WEIGHT per pair: mdistiller's file (res32x4_res8x4) and ReviewKD's own CIFAR-100 script; the
#: pairs neither publishes keep the default 1.0
REVIEW_WEIGHT = {"res32x4_res8x4": 5.0, "res56_res20": 0.6, "res110_res32": 1.0, "wrn40_2_wrn_16_2": 5.0,
                 "wrn40_2_wrn_40_1": 5.0, "res32x4_shuv1": 5.0, "res32x4_shuv2": 8.0, "wrn40_2_shuv1": 5.0}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------------------------- HCL
def _adaptive_pool_loops(x: torch.Tensor, k: int) -> torch.Tensor:
    """Adaptive average pooling to k×k written out: bin i spans [floor(i·H/k), ceil((i+1)·H/k))."""
    b, c, h, w = x.shape
    out = torch.zeros(b, c, k, k, dtype=x.dtype)
    for i in range(k):
        r0, r1 = (i * h) // k, -(-((i + 1) * h) // k)
        for j in range(k):
            c0, c1 = (j * w) // k, -(-((j + 1) * w) // k)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].sum(dim=(2, 3)) / ((r1 - r0) * (c1 - c0))
    return out


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return sum((x - y) ** 2 for x, y in zip(a.flatten().tolist(), b.flatten().tolist())) / a.numel()


#: map size -> [(pooled size, weight)] of the terms beyond the full-resolution one (weight 1)
PYRAMID = {8: [(4, 0.5), (2, 0.25), (1, 0.125)], 6: [(4, 0.5), (2, 0.25), (1, 0.125)],
           4: [(2, 0.5), (1, 0.25)], 2: [(1, 0.5)], 1: []}


@pytest.mark.parametrize("size", list(PYRAMID))
def test_hcl_level_is_the_weighted_pyramid_written_out(size):
    g = _gen(size)
    s = torch.randn(2, 3, size, size, generator=g, dtype=torch.float64)
    t = torch.randn(2, 3, size, size, generator=g, dtype=torch.float64)
    terms = [(_mse(s, t), 1.0)] + [(_mse(_adaptive_pool_loops(s, k), _adaptive_pool_loops(t, k)), w)
                                   for k, w in PYRAMID[size]]
    want = sum(v * w for v, w in terms) / sum(w for _, w in terms)
    assert hcl_level(s, t).item() == pytest.approx(want, rel=1e-10)


def test_hcl_sums_levels_and_its_invariances():
    g = _gen(7)
    students = [torch.randn(2, 4, h, h, generator=g, dtype=torch.float64) for h in (8, 4, 1)]
    teachers = [torch.randn(2, 4, h, h, generator=g, dtype=torch.float64) for h in (8, 4, 1)]
    want = sum(hcl_level(s, t).item() for s, t in zip(students, teachers))
    assert hcl_loss(students, teachers).item() == pytest.approx(want, rel=1e-12)
    assert hcl_loss(teachers, teachers).item() == 0.0
    # a constant offset c moves every pooled map by c as well: each level costs exactly c²
    shifted = [t + 0.3 for t in teachers]
    assert hcl_loss(shifted, teachers).item() == pytest.approx(3 * 0.09, rel=1e-10)
    with pytest.raises(ValueError):
        hcl_loss(students[:2], teachers)
    with pytest.raises(ValueError):
        hcl_level(students[0], teachers[1])


# ---------------------------------------------------------------------------------------------- ABF
def _upsample_nearest_loops(x: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest-neighbour resize to size×size written out: output pixel i reads input floor(i·H/size)."""
    h = x.shape[-1]
    rows = [(i * h) // size for i in range(size)]
    return torch.stack([torch.stack([x[:, :, r, c] for c in rows], dim=-1) for r in rows], dim=-2)


def test_abf_fuses_by_attention_and_resizes_to_the_teacher():
    torch.manual_seed(0)
    abf = ABF(in_channel=5, mid_channel=3, out_channel=4, fuse=True).double().eval()
    g = _gen(1)
    x = torch.randn(2, 5, 4, 4, generator=g, dtype=torch.float64)
    residual = torch.randn(2, 3, 2, 2, generator=g, dtype=torch.float64)
    out, fused = abf(x, residual, shape=4, out_shape=8)
    with torch.no_grad():
        eps = abf.conv1[1].eps
        mapped = torch.einsum("oi,bihw->bohw", abf.conv1[0].weight[:, :, 0, 0], x) / math.sqrt(1 + eps)
        up = _upsample_nearest_loops(residual, 4)
        w_att, b_att = abf.att_conv[0].weight[:, :, 0, 0], abf.att_conv[0].bias
        logits = torch.einsum("oi,bihw->bohw", w_att, torch.cat([mapped, up], 1)) + b_att.view(1, 2, 1, 1)
        a = torch.sigmoid(logits)
        want_fused = _upsample_nearest_loops(mapped * a[:, :1] + up * a[:, 1:], 8)
        want_out = F.conv2d(want_fused, abf.conv2[0].weight, padding=1) / math.sqrt(1 + abf.conv2[1].eps)
    assert fused.shape == (2, 3, 8, 8) and out.shape == (2, 4, 8, 8)
    torch.testing.assert_close(fused, want_fused)
    torch.testing.assert_close(out, want_out)


def test_abf_without_fusion_and_initial_values():
    torch.manual_seed(0)
    abf = ABF(in_channel=64, mid_channel=32, out_channel=48, fuse=False)
    assert abf.att_conv is None
    out, fused = abf(torch.randn(3, 64, 1, 1), out_shape=1)
    assert out.shape == (3, 48, 1, 1) and fused.shape == (3, 32, 1, 1)
    fusing = ABF(in_channel=64, mid_channel=32, out_channel=48, fuse=True)
    for conv, fan_in in ((fusing.conv1[0], 64), (fusing.conv2[0], 32 * 9)):
        bound = math.sqrt(3.0 / fan_in)  # kaiming_uniform_ with a=1: gain 1
        assert conv.bias is None and conv.weight.abs().max().item() <= bound
        assert conv.weight.abs().max().item() > 0.95 * bound
    att = fusing.att_conv[0]
    assert att.kernel_size == (1, 1) and att.in_channels == 64 and att.out_channels == 2 and att.bias is not None
    assert isinstance(fusing.att_conv[1], torch.nn.Sigmoid)
    for bn in (fusing.conv1[1], fusing.conv2[1]):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))


# ------------------------------------------------------------------------------------- distiller
TINY = ("resnet8x4", "resnet8")
TINY_OPTS = ["REVIEWKD.IN_CHANNELS", "[16, 32, 64, 64]", "REVIEWKD.OUT_CHANNELS", "[64, 128, 256, 256]"]


def _cfg(teacher: str, student: str, *opts, path=None):
    return load_config(path, ["DISTILLER.TYPE", "REVIEWKD", "DISTILLER.TEACHER", teacher,
                              "DISTILLER.STUDENT", student, *opts])


def _models(teacher: str, student: str, seed: int = 0):
    torch.manual_seed(seed)
    return get_model(teacher, "cifar100", 100), get_model(student, "cifar100", 100)


@pytest.mark.parametrize("preact", [False, True])
def test_distillation_term_is_the_pure_loss_on_the_right_tensors_with_warm_up(preact):
    teacher, student = _models(*TINY)
    cfg = _cfg(*TINY, *TINY_OPTS, "REVIEWKD.CE_WEIGHT", "0.7", "REVIEWKD.REVIEWKD_WEIGHT", "3.0",
               "REVIEWKD.WARMUP_EPOCHS", "4", "REVIEWKD.MAX_MID_CHANNEL", "32", "REVIEWKD.STU_PREACT", str(preact))
    distiller = ReviewKD.build(student, teacher, cfg, 8)
    distiller.train()
    image, target = torch.randn(4, 3, 32, 32, generator=_gen(2)), torch.tensor([2, 3, 5, 7])
    terms = {epoch: distiller(image=image, target=target, epoch=epoch)[1] for epoch in (2, 9)}

    with torch.no_grad():
        logits, fs = student(image)
        _, ft = teacher(image)
        f = fs["preact_feats" if preact else "feats"]
        a = distiller.abfs
        out0, res = a[0](fs["pooled_feat"][:, :, None, None], out_shape=1)  # deepest: no fusion
        out1, res = a[1](f[3], res, 8, 8)
        out2, res = a[2](f[2], res, 16, 16)
        out3, _ = a[3](f[1], res, 32, 32)
        teacher_levels = [ft["preact_feats"][1], ft["preact_feats"][2], ft["preact_feats"][3],
                          ft["pooled_feat"][:, :, None, None]]
        hcl = hcl_loss([out3, out2, out1, out0], teacher_levels)
    assert [m.conv1[0].out_channels for m in a] == [32] * 4  # min(MAX_MID_CHANNEL, IN_CHANNELS[-1])
    torch.testing.assert_close(terms[2]["loss_feat"], 3.0 * 0.5 * hcl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms[9]["loss_feat"], 3.0 * hcl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms[9]["loss_ce"], 0.7 * F.cross_entropy(logits, target))


def test_each_output_reviews_its_level_and_every_deeper_one_only():
    teacher, student = _models(*TINY)
    distiller = ReviewKD.build(student, teacher, _cfg(*TINY, *TINY_OPTS), 8)
    g = _gen(5)
    levels = [torch.randn(2, c, h, h, generator=g, requires_grad=True)
              for c, h in ((16, 32), (16, 32), (32, 16), (64, 8), (64, 1))]  # stem, 3 stages, pooled
    outputs = distiller.review(levels)
    assert [tuple(o.shape[1:]) for o in outputs] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (256, 1, 1)]
    for i, out in enumerate(outputs):
        probe = torch.randn(out.shape, generator=g)  # not a plain sum: BatchNorm makes that constant
        grads = torch.autograd.grad((out * probe).sum(), levels, allow_unused=True, retain_graph=True)
        reached = [d is not None and float(d.abs().sum()) > 1e-6 for d in grads]
        assert reached == [False] + [j >= i for j in range(4)], i  # the stem is not a level


def test_distillation_term_alone_gives_the_student_a_gradient():
    teacher, student = _models(*TINY)
    distiller = ReviewKD.build(student, teacher, _cfg(*TINY, *TINY_OPTS), 8)
    distiller.train()
    _, losses = distiller(image=torch.randn(2, 3, 32, 32, generator=_gen(3)), target=torch.tensor([0, 1]), epoch=30)
    grads = torch.autograd.grad(losses["loss_feat"], list(student.parameters()), allow_unused=True)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def _expected_extra(cfg) -> int:
    c_in, c_out = list(cfg.REVIEWKD.IN_CHANNELS), list(cfg.REVIEWKD.OUT_CHANNELS)
    mid = min(cfg.REVIEWKD.MAX_MID_CHANNEL, c_in[-1])
    total = 0
    for i, (a, b) in enumerate(zip(c_in, c_out)):
        total += a * mid + 2 * mid + 9 * mid * b + 2 * b  # 1x1 conv + BN, 3x3 conv + BN
        if i < len(c_in) - 1:
            total += 2 * mid * 2 + 2  # attention 1x1 conv with bias
    return total


@pytest.mark.parametrize("pair", list(CIFAR_PAIRS))
def test_every_pair_builds_and_steps_with_its_config(pair):
    t_name, s_name = CIFAR_PAIRS[pair]
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "cifar100", "reviewkd", f"{pair}.yaml"))
    assert (cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT) == (t_name, s_name)
    assert cfg.REVIEWKD.REVIEWKD_WEIGHT == REVIEW_WEIGHT.get(pair, 1.0)
    assert cfg.SOLVER.LR == (0.01 if s_name in ("ShuffleV1", "ShuffleV2", "MobileNetV2") else 0.05)
    teacher, student = _models(t_name, s_name)
    distiller = ReviewKD.build(student, teacher, cfg, 8)
    assert distiller.get_extra_parameters() == _expected_extra(cfg)
    assert distiller.abfs[0].att_conv is None and distiller.abfs[0].conv1[0].in_channels == cfg.REVIEWKD.IN_CHANNELS[-1]
    distiller.train()
    _, losses = distiller(image=torch.randn(2, 3, 32, 32, generator=_gen(4)), target=torch.tensor([1, 2]), epoch=1)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(p.grad is not None for p in distiller.abfs.parameters())


def test_config_that_disagrees_with_the_models_names_the_right_values():
    teacher, student = _models("resnet56", "resnet20")
    opts = ["REVIEWKD.IN_CHANNELS", "[16, 32, 64, 32]", "REVIEWKD.OUT_CHANNELS", "[16, 32, 64, 128]"]
    with pytest.raises(ValueError, match=r"IN_CHANNELS \[16, 32, 64, 64\].*OUT_CHANNELS \[16, 32, 64, 64\]"):
        ReviewKD.build(student, teacher, _cfg("resnet56", "resnet20", *opts), 8)
    opts = ["REVIEWKD.SHAPES", "[1, 8, 16]"]
    with pytest.raises(ValueError, match="4 entries"):
        ReviewKD.build(student, teacher, _cfg("resnet56", "resnet20", *opts), 8)


def _stated_levels(pair: str) -> dict:
    cfg = load_config(os.path.join(REPO_ROOT, "configs", "cifar100", "reviewkd", f"{pair}.yaml"))
    return {k: [int(x) for x in cfg.REVIEWKD[k]] for k in ("SHAPES", "OUT_SHAPES", "IN_CHANNELS", "OUT_CHANNELS")}


@pytest.mark.parametrize("pair", list(CIFAR_PAIRS))
def test_lists_left_at_the_defaults_follow_the_models_of_every_pair(pair):
    """Without the four lists (mdistiller's defaults), the distiller takes what the packaged config states
    by hand: the same modules, parameter for parameter."""
    t_name, s_name = CIFAR_PAIRS[pair]
    stated = _stated_levels(pair)
    path = os.path.join(REPO_ROOT, "configs", "cifar100", "reviewkd", f"{pair}.yaml")
    keys = ["SHAPES", "OUT_SHAPES", "IN_CHANNELS", "OUT_CHANNELS"]
    defaults = [x for k in keys for x in (f"REVIEWKD.{k}", str(list(build_default_config().REVIEWKD[k])))]
    teacher, student = _models(t_name, s_name)
    auto = ReviewKD.build(student, teacher, _cfg(t_name, s_name, *defaults, path=path), 8)
    assert (auto.shapes, auto.out_shapes) == (stated["SHAPES"], stated["OUT_SHAPES"])
    teacher, student = _models(t_name, s_name)
    by_hand = ReviewKD.build(student, teacher, _cfg(t_name, s_name, path=path), 8)
    assert {k: tuple(v.shape) for k, v in auto.abfs.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in by_hand.abfs.state_dict().items()}


def test_a_given_list_is_checked_and_the_others_follow_the_models():
    teacher, student = _models("resnet56", "resnet20")
    distiller = ReviewKD.build(student, teacher, _cfg("resnet56", "resnet20", "REVIEWKD.IN_CHANNELS",
                                                      "[16, 32, 64, 64]"), 8)
    assert [m.conv2[0].out_channels for m in distiller.abfs] == [64, 64, 32, 16]  # deepest first
    assert distiller.out_shapes == [1, 8, 16, 32] and distiller.shapes == [1, 8, 16, 32]
    with pytest.raises(ValueError, match=r"set REVIEWKD.OUT_SHAPES \[1, 8, 16, 32\] \(config: \[1, 4, 8, 16\]\)"):
        ReviewKD.build(student, teacher, _cfg("resnet56", "resnet20", "REVIEWKD.OUT_SHAPES", "[1, 4, 8, 16]"), 8)


def test_stu_preact_needs_pre_relu_student_features():
    path = os.path.join(REPO_ROOT, "configs", "cifar100", "reviewkd", "vgg13_mv2.yaml")
    teacher, student = _models("vgg13", "MobileNetV2")
    with pytest.raises(ValueError, match="MobileNetV2.*STU_PREACT"):
        ReviewKD.build(student, teacher, _cfg("vgg13", "MobileNetV2", "REVIEWKD.STU_PREACT", "True", path=path), 8)


def test_imagenet_configs_match_the_models():
    for pair, mid in (("r34_r18", 512), ("r50_mv1", 256)):
        cfg = load_config(os.path.join(REPO_ROOT, "configs", "imagenet", pair, "reviewkd.yaml"))
        torch.manual_seed(0)
        teacher = get_model(cfg.DISTILLER.TEACHER, "imagenet", 1000)
        student = get_model(cfg.DISTILLER.STUDENT, "imagenet", 1000)
        distiller = ReviewKD.build(student, teacher, cfg, 8)
        assert {m.conv1[0].out_channels for m in distiller.abfs} == {mid}
        assert distiller.get_extra_parameters() == _expected_extra(cfg)
        assert cfg.REVIEWKD.WARMUP_EPOCHS == 1 and cfg.REVIEWKD.STU_PREACT


def test_registry_defaults_are_mdistillers():
    r = build_default_config().REVIEWKD
    defaults = (r.CE_WEIGHT, r.REVIEWKD_WEIGHT, r.WARMUP_EPOCHS, r.MAX_MID_CHANNEL, r.STU_PREACT)
    assert defaults == (1.0, 1.0, 20, 512, False)
    assert list(r.SHAPES) == list(r.OUT_SHAPES) == [1, 8, 16, 32]
    assert list(r.IN_CHANNELS) == list(r.OUT_CHANNELS) == [64, 128, 256, 256]
