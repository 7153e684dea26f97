"""Wiring of every distiller: each distillation term equals its pure loss applied to the right tensors, in
the right order, with the configured (non-default, distinct) weights, at two epochs (warm-ups); the term
alone sends the student a gradient — the one of that expected expression where it is a torch graph —; the
method's learned parameters start at their documented values. KD/DKD/DDKD/DIFFKD logit terms are checked
against the NumPy oracles of tests/numpy_oracles.py, not the package's own ``kd_loss``/``dkd_loss``.

Tiny zoo models: a resnet8 student and a resnet8x4 teacher (same map sizes, different widths), batch 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Sequence

import pytest
import torch
import torch.nn.functional as F

from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import build_default_config
from mdistiller_ddkd.losses.attention import at_stage_loss
from mdistiller_ddkd.losses.contrastive import contrast_scores, estimate_normalisation, nce_loss
from mdistiller_ddkd.losses.dist import dist_loss
from mdistiller_ddkd.losses.feature import pkt_loss, vid_loss
from mdistiller_ddkd.losses.mmd import nst_stage_loss
from mdistiller_ddkd.losses.relational import rkd_angle_loss, rkd_distance_loss
from mdistiller_ddkd.losses.similarity import sp_loss
from mdistiller_ddkd.losses.svd import kdsvd_loss
from mdistiller_ddkd.models import cifar_model_dict
from tests.numpy_oracles import np_dkd, np_kd

EPOCHS = (2, 15)  # inside and past the warm-ups configured below (10 epochs)
CRD_NUM_DATA = 40


@dataclass
class Case:
    """One forward at one epoch, as the expectations see it."""

    distiller: object
    image: torch.Tensor
    target: torch.Tensor
    epoch: int
    extra: Dict = field(default_factory=dict)
    before: Dict = field(default_factory=dict)  # state snapshot taken before the forward
    captured: Dict = field(default_factory=dict)  # outputs of method submodules during the forward

    def student(self):
        return self.distiller.student(self.image)

    def teacher(self):
        with torch.no_grad():
            return self.distiller.teacher(self.image)

    def ce(self, weight: float) -> torch.Tensor:
        return weight * F.cross_entropy(self.student()[0], self.target)


def _no_learned_parameters(d) -> None:
    assert d.get_extra_parameters() == 0  # documented: the method adds no parameters


@dataclass
class Spec:
    overrides: Dict[str, object]
    terms: Sequence[str]  # the distillation terms
    expected: Callable[[Case], Dict[str, object]]  # term -> expected value (tensor or float)
    init: Callable[[object], None] = _no_learned_parameters
    capture: Sequence[str] = ()  # submodules whose outputs the expectation needs


def _stages(feats):
    return feats["feats"][1:]


def _kd(c: Case):
    return {"loss_ce": c.ce(0.3), "loss_kd": 0.7 * np_kd(c.student()[0], c.teacher()[0], 3)}


def _dkd(c: Case):
    warm = min(c.epoch / 10, 1.0)
    return {"loss_ce": c.ce(0.6), "loss_kd": warm * np_dkd(c.student()[0], c.teacher()[0], c.target, 1.5, 5.0, 3.0)}


def _fitnet(c: Case):
    hint = c.distiller.regressor(c.student()[1]["feats"][1])
    return {"loss_ce": c.ce(0.4), "loss_feat": 7.0 * ((hint - c.teacher()[1]["feats"][1]) ** 2).mean()}


def _fitnet_init(d):
    assert d.regressor.kind == "conv_valid" and d.regressor.conv.kernel_size == (1, 1)
    assert (d.regressor.conv.in_channels, d.regressor.conv.out_channels) == (16, 64)  # stage 1 of each
    assert torch.equal(d.regressor.bn.weight, torch.ones(64)) and torch.equal(d.regressor.bn.bias, torch.zeros(64))


def _vid(c: Case):
    total = 0.0
    for reg, s, t in zip(c.distiller.regressors, _stages(c.student()[1]), _stages(c.teacher()[1])):
        total = total + vid_loss(reg.mean(s), F.softplus(reg.alpha) + 1e-4, t)
    return {"loss_ce": c.ce(0.2), "loss_feat": 1.7 * total}


def _vid_init(d):
    assert len(d.regressors) == 3
    for reg in d.regressors:
        alpha0 = math.log(math.exp(3.0 - 1e-4) - 1.0)
        torch.testing.assert_close(reg.alpha.detach(), torch.full_like(reg.alpha, alpha0))
        torch.testing.assert_close(reg.variance().detach(), torch.full_like(reg.alpha, 3.0))


def _rkd(c: Case):
    s, t = c.student()[1]["pooled_feat"], c.teacher()[1]["pooled_feat"]
    rkd = 20 * rkd_distance_loss(s, t, squared=True, eps=1e-8) + 40 * rkd_angle_loss(s, t)
    return {"loss_ce": c.ce(0.5), "loss_feat": 2.0 * rkd}


def _pkt(c: Case):
    s, t = c.student()[1]["pooled_feat"], c.teacher()[1]["pooled_feat"]
    return {"loss_ce": c.ce(0.6), "loss_feat": 123.0 * pkt_loss(s, t)}


def _crd_extra():
    g = torch.Generator().manual_seed(3)
    index = torch.tensor([0, 5, 21, 33])
    negatives = torch.randint(CRD_NUM_DATA, (4, 8), generator=g)
    return {"index": index, "contrastive_index": torch.cat([index[:, None], negatives], dim=1)}


def _crd(c: Case):
    d, b = c.distiller, c.before
    v_s = d.embed_s(c.student()[1]["pooled_feat"])
    v_t = d.embed_t(c.teacher()[1]["pooled_feat"])
    cidx = c.extra["contrastive_index"]
    scores_t = contrast_scores(b["memory_teacher"], cidx, v_s, 0.1)  # student anchor, teacher bank
    scores_s = contrast_scores(b["memory_student"], cidx, v_t, 0.1)
    z_t = b["z_teacher"] if b["z_teacher"] > 0 else estimate_normalisation(scores_t, CRD_NUM_DATA)
    z_s = b["z_student"] if b["z_student"] > 0 else estimate_normalisation(scores_s, CRD_NUM_DATA)
    nce = nce_loss(scores_t / z_t, CRD_NUM_DATA) + nce_loss(scores_s / z_s, CRD_NUM_DATA)
    # after the loss, the batch's bank rows moved with momentum 0.7 towards the new embeddings
    index = c.extra["index"]
    for bank, v in (("memory_student", v_s), ("memory_teacher", v_t)):
        mixed = 0.7 * b[bank][index] + 0.3 * v.detach()
        torch.testing.assert_close(getattr(d, bank)[index], F.normalize(mixed, dim=1), rtol=1e-5, atol=1e-6)
    return {"loss_ce": c.ce(0.5), "loss_feat": 0.9 * nce}


def _crd_init(d):
    for bank in (d.memory_student, d.memory_teacher):
        assert bank.shape == (CRD_NUM_DATA, 16)
        torch.testing.assert_close(bank.norm(dim=1), torch.ones(CRD_NUM_DATA))
    assert d.z_student.item() == -1.0 and d.z_teacher.item() == -1.0  # "not estimated yet"


def _dist(c: Case):
    return {"loss_ce": c.ce(0.4), "loss_kd": 1.5 * dist_loss(c.student()[0], c.teacher()[0], 0.7, 1.3, 3.0)}


def _at(c: Case):
    total = sum(at_stage_loss(s, t, 3) for s, t in zip(_stages(c.student()[1]), _stages(c.teacher()[1])))
    return {"loss_ce": c.ce(0.3), "loss_feat": 500.0 * total}


def _nst(c: Case):
    total = sum(nst_stage_loss(s, t) for s, t in zip(_stages(c.student()[1]), _stages(c.teacher()[1])))
    return {"loss_ce": c.ce(0.4), "loss_feat": 20.0 * total}


def _sp(c: Case):
    s, t = c.student()[1]["feats"][-1], c.teacher()[1]["feats"][-1]  # the last stage's maps, not pooled
    return {"loss_ce": c.ce(0.5), "loss_feat": 2000.0 * sp_loss(s, t)}


def _kdsvd(c: Case):
    return {"loss_ce": c.ce(0.6), "loss_feat": 3.0 * kdsvd_loss(_stages(c.student()[1]), _stages(c.teacher()[1]), 2)}


def _diffusion(logit_oracle):
    def expected(c: Case):
        den_f, diff_f = c.captured["feat_branch"]
        den_l, diff_l = c.captured["logit_branch"]
        latent, recon = c.captured["autoencoder"]
        logits_t, feats_t = c.teacher()
        return {
            "loss_ce": c.ce(0.6),
            "loss_kd_logit": 1.3 * logit_oracle(den_l.flatten(1), logits_t, c),
            "loss_kd_feat": 1.3 * 0.4 * ((den_f - latent.detach()) ** 2).mean(),
            "loss_ae": 0.8 * ((recon - feats_t["feats"][-1]) ** 2).mean(),
            "loss_diff": 0.7 * (diff_f + diff_l),
        }

    return expected


def _diffusion_overrides(node: str) -> Dict[str, object]:
    keys = {"CE_WEIGHT": 0.6, "DIFF_WEIGHT": 0.7, "AE_WEIGHT": 0.8, "KD_WEIGHT": 1.3, "FEAT_WEIGHT": 0.4,
            "INFERENCE_STEPS": 2, "DKD.ALPHA": 1.5, "DKD.BETA": 5.0, "DKD.T": 3.0, "DKD.WARMUP": 10}
    if node == "DIFFKD":
        keys["KL_T"] = 2.0
    return {f"{node}.{k}": v for k, v in keys.items()}


def _diffusion_init(d):
    # the documented linear β schedule (1e-4 .. 0.02 over 1000 steps) behind every branch
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    expected = torch.cumprod(1 - betas, 0)
    for branch in (d.feat_branch, d.logit_branch):
        torch.testing.assert_close(branch.schedule.alphas_cumprod.double(), expected, rtol=1e-5, atol=1e-7)


_DIFFUSION_CAPTURE = ("feat_branch", "logit_branch", "autoencoder")

SPECS: Dict[str, Spec] = {
    "KD": Spec({"KD.TEMPERATURE": 3, "KD.LOSS.CE_WEIGHT": 0.3, "KD.LOSS.KD_WEIGHT": 0.7}, ["loss_kd"], _kd),
    "DKD": Spec({"DKD.CE_WEIGHT": 0.6, "DKD.ALPHA": 1.5, "DKD.BETA": 5.0, "DKD.T": 3.0, "DKD.WARMUP": 10},
                ["loss_kd"], _dkd),
    "FITNET": Spec({"FITNET.HINT_LAYER": 1, "FITNET.LOSS.CE_WEIGHT": 0.4, "FITNET.LOSS.FEAT_WEIGHT": 7.0},
                   ["loss_feat"], _fitnet, _fitnet_init),
    "VID": Spec({"VID.INIT_PRED_VAR": 3.0, "VID.EPS": 1e-4, "VID.LOSS.CE_WEIGHT": 0.2, "VID.LOSS.FEAT_WEIGHT": 1.7},
                ["loss_feat"], _vid, _vid_init),
    "RKD": Spec({"RKD.DISTANCE_WEIGHT": 20, "RKD.ANGLE_WEIGHT": 40, "RKD.LOSS.CE_WEIGHT": 0.5,
                 "RKD.LOSS.FEAT_WEIGHT": 2.0, "RKD.PDIST.SQUARED": True, "RKD.PDIST.EPSILON": 1e-8},
                ["loss_feat"], _rkd),
    "PKT": Spec({"PKT.LOSS.CE_WEIGHT": 0.6, "PKT.LOSS.FEAT_WEIGHT": 123.0}, ["loss_feat"], _pkt),
    "CRD": Spec({"CRD.NCE.K": 8, "CRD.FEAT.DIM": 16, "CRD.LOSS.CE_WEIGHT": 0.5, "CRD.LOSS.FEAT_WEIGHT": 0.9,
                 "CRD.NCE.TEMPERATURE": 0.1, "CRD.NCE.MOMENTUM": 0.7}, ["loss_feat"], _crd, _crd_init),
    "DIST": Spec({"DIST.CE_WEIGHT": 0.4, "DIST.KD_WEIGHT": 1.5, "DIST.BETA": 0.7, "DIST.GAMMA": 1.3,
                  "DIST.TEMPERATURE": 3.0}, ["loss_kd"], _dist),
    "AT": Spec({"AT.P": 3, "AT.LOSS.CE_WEIGHT": 0.3, "AT.LOSS.FEAT_WEIGHT": 500.0}, ["loss_feat"], _at),
    "NST": Spec({"NST.LOSS.CE_WEIGHT": 0.4, "NST.LOSS.FEAT_WEIGHT": 20.0}, ["loss_feat"], _nst),
    "SP": Spec({"SP.LOSS.CE_WEIGHT": 0.5, "SP.LOSS.FEAT_WEIGHT": 2000.0}, ["loss_feat"], _sp),
    "KDSVD": Spec({"KDSVD.K": 2, "KDSVD.LOSS.CE_WEIGHT": 0.6, "KDSVD.LOSS.FEAT_WEIGHT": 3.0}, ["loss_feat"], _kdsvd),
    "DDKD": Spec(_diffusion_overrides("DDKD"), ["loss_kd_logit", "loss_kd_feat"],
                 _diffusion(lambda z, t, c: min(c.epoch / 10, 1.0) * np_dkd(z, t, c.target, 1.5, 5.0, 3.0)),
                 _diffusion_init, _DIFFUSION_CAPTURE),
    "DIFFKD": Spec(_diffusion_overrides("DIFFKD"), ["loss_kd_logit", "loss_kd_feat"],
                   _diffusion(lambda z, t, c: np_kd(z, t, 2.0)), _diffusion_init, _DIFFUSION_CAPTURE),
}


def _config(method: str):
    cfg = build_default_config()
    cfg.DISTILLER.TYPE, cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT = method, "resnet8x4", "resnet8"
    for key, value in SPECS[method].overrides.items():
        *path, leaf = key.split(".")
        node = cfg
        for p in path:
            node = node[p]
        node[leaf] = value
    return cfg


def _build(method: str):
    torch.manual_seed(0)
    teacher = cifar_model_dict["resnet8x4"][0](num_classes=100)
    student = cifar_model_dict["resnet8"][0](num_classes=100)
    return distiller_dict[method].build(student, teacher, _config(method), CRD_NUM_DATA).train()


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(4, 3, 32, 32, generator=g), torch.tensor([3, 7, 7, 42])


def _grads(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(grads, params)]


def test_every_registered_distiller_with_a_teacher_is_covered():
    with_teacher = {name for name, cls in distiller_dict.items() if cls.needs_teacher}
    missing = {"KD", "DKD", "FITNET", "VID", "RKD", "PKT", "CRD", "DIST", "DDKD", "DIFFKD", "AT", "NST", "SP", "KDSVD"}
    assert missing <= set(SPECS) and missing <= with_teacher


@pytest.mark.parametrize("method", list(SPECS))
def test_configured_weights_are_not_defaults_and_distinct(method):
    overrides = SPECS[method].overrides
    for key, value in overrides.items():
        node = build_default_config()
        for p in key.split("."):
            node = node[p]
        assert node != value, f"{key} = {value} is the default: a dropped weight would go unnoticed"
    weights = [v for k, v in overrides.items() if "WEIGHT" in k or k.split(".")[-1] in ("ALPHA", "BETA", "GAMMA")]
    assert len(weights) == len(set(weights)), "equal weights could hide two swapped terms"


@pytest.mark.parametrize("method", list(SPECS))
def test_distillation_terms_are_the_pure_losses_on_the_right_tensors(method):
    spec = SPECS[method]
    distiller = _build(method)
    spec.init(distiller)
    image, target = _batch()
    extra = _crd_extra() if distiller.train_batch_layout == "crd" else {}
    captured: Dict[str, object] = {}
    handles = [getattr(distiller, name).register_forward_hook(lambda m, i, o, name=name: captured.__setitem__(name, o))
               for name in spec.capture]
    student_params = list(distiller.student.parameters())
    try:
        for epoch in EPOCHS:
            before = {k: v.clone() for k, v in distiller.state_dict().items() if k.startswith(("memory", "z_"))}
            _, losses = distiller(image=image, target=target, epoch=epoch, **extra)
            case = Case(distiller, image, target, epoch, extra, before, dict(captured))
            expected = spec.expected(case)
            assert set(expected) <= set(losses), (sorted(expected), sorted(losses))
            for term, value in expected.items():
                got = losses[term]
                assert got.dim() == 0, term
                want = value.item() if torch.is_tensor(value) else value
                # float32 losses against float64 oracles: KL terms cancel, hence 1e-4
                assert got.item() == pytest.approx(want, rel=1e-4, abs=1e-7), (method, term, epoch)
            for term in spec.terms:
                g = _grads(losses[term], student_params)
                assert sum(x.abs().sum() for x in g) > 0, f"{method}.{term} sends the student no gradient"
                if torch.is_tensor(expected[term]) and expected[term].requires_grad:
                    ref = _grads(expected[term], student_params)
                    scale = max(float(x.abs().max()) for x in ref)
                    for a, b in zip(g, ref):
                        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)
    finally:
        for h in handles:
            h.remove()
