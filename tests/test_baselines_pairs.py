"""Every baseline builds for every teacher/student pair of Tables 2/3 (real models) and trains one step;
its extra-parameter count equals a count computed independently from the feature shapes."""

from __future__ import annotations

import math

import pytest
import torch

from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import build_default_config
from tests.helpers import CIFAR_PAIRS as PAIRS

METHODS = ["KD", "DKD", "FITNET", "VID", "RKD", "PKT", "CRD", "DIST", "AT", "NST", "SP", "KDSVD"]
#: pairs a method refuses at build time, and a phrase of the reason it gives
UNSERVED = {
    ("KDSVD", pair): "needs equal map widths"
    for pair in ("res32x4_shuv1", "res32x4_shuv2", "res50_mv2", "vgg13_mv2", "wrn40_2_shuv1")
}
CRD_K, CRD_NUM_DATA = 8, 40

_cache = {}



def _pair(pair: str):
    """(teacher, student, teacher feats, student feats) built once per pair for the whole module."""
    if pair not in _cache:
        from mdistiller_ddkd.models import cifar_model_dict

        torch.manual_seed(0)
        t_name, s_name = PAIRS[pair]
        teacher = cifar_model_dict[t_name][0](num_classes=100)
        student = cifar_model_dict[s_name][0](num_classes=100)
        x = torch.zeros(1, 3, 32, 32)
        with torch.no_grad():
            teacher.eval(), student.eval()
            feats_t, feats_s = teacher(x)[1], student(x)[1]
        _cache[pair] = (teacher, student, feats_t, feats_s)
    return _cache[pair]


def expected_extra_parameters(method: str, feats_t, feats_s, cfg) -> int:
    """Parameter count of the method's own modules, from the feature shapes and the papers' designs."""
    if method in ("KD", "DKD", "RKD", "PKT", "DIST", "AT", "NST", "SP", "KDSVD"):
        return 0
    if method == "FITNET":
        layer = cfg.FITNET.HINT_LAYER
        _, c_s, h_s, w_s = feats_s["feats"][layer].shape
        _, c_t, h_t, w_t = feats_t["feats"][layer].shape
        if h_s == 2 * h_t:
            kernel = 9  # 3x3 stride-2 conv
        elif 2 * h_s == h_t:
            kernel = 16  # 4x4 transposed conv
        elif h_s >= h_t:
            kernel = (1 + h_s - h_t) * (1 + w_s - w_t)
        else:
            kernel = 1  # resize, then 1x1 conv
        return kernel * c_s * c_t + c_t + 2 * c_t  # conv weight + bias, BatchNorm affine
    if method == "VID":
        n = min(len(feats_s["feats"]), len(feats_t["feats"]))
        total = 0
        for i in range(1, n):
            c_s, c_t = feats_s["feats"][i].shape[1], feats_t["feats"][i].shape[1]
            total += c_s * c_t + 2 * c_t * c_t + c_t  # three bias-free 1x1 convs + variances
        return total
    if method == "CRD":
        dim = cfg.CRD.FEAT.DIM
        d_s, d_t = feats_s["pooled_feat"].shape[1], feats_t["pooled_feat"].shape[1]
        return (d_s + 1) * dim + (d_t + 1) * dim
    raise KeyError(method)


def _cfg(method: str, pair: str):
    cfg = build_default_config()
    t_name, s_name = PAIRS[pair]
    cfg.DISTILLER.TYPE = method
    cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT = t_name, s_name
    cfg.CRD.NCE.K = CRD_K
    return cfg


@pytest.mark.parametrize("pair", list(PAIRS))
@pytest.mark.parametrize("method", METHODS)
def test_method_builds_and_steps(pair, method):
    teacher, student, feats_t, feats_s = _pair(pair)
    cfg = _cfg(method, pair)
    if (method, pair) in UNSERVED:
        with pytest.raises(ValueError, match=UNSERVED[method, pair]):
            distiller_dict[method].build(student, teacher, cfg, CRD_NUM_DATA)
        return
    distiller = distiller_dict[method].build(student, teacher, cfg, CRD_NUM_DATA)
    distiller.train()
    assert not teacher.training and student.training

    assert distiller.get_extra_parameters() == expected_extra_parameters(method, feats_t, feats_s, cfg)
    learnable = {id(p) for p in distiller.get_learnable_parameters()}
    assert all(id(p) in learnable for p in student.parameters())
    assert not any(id(p) in learnable for p in teacher.parameters())

    g = torch.Generator().manual_seed(1)
    image = torch.randn(2, 3, 32, 32, generator=g)
    target = torch.tensor([3, 7])
    extra = {}
    if distiller.train_batch_layout == "crd":
        index = torch.tensor([0, 21])
        negatives = torch.randint(CRD_NUM_DATA, (2, CRD_K), generator=g)
        extra = {"index": index, "contrastive_index": torch.cat([index[:, None], negatives], dim=1)}
    for p in distiller.parameters():
        p.grad = None
    logits, losses = distiller(image=image, target=target, epoch=30, **extra)
    assert logits.shape == (2, 100)
    total = sum(losses.values())
    assert total.dim() == 0 and math.isfinite(total.item())
    total.backward()
    grads = [p.grad for p in distiller.get_learnable_parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert all(p.grad is None for p in teacher.parameters())
    # every method module receives a gradient (the distillation term is wired to it)
    student_ids = {id(p) for p in student.parameters()}
    extra_params = [p for p in distiller.get_learnable_parameters() if id(p) not in student_ids]
    assert all(p.grad is not None for p in extra_params)

    distiller.eval()
    assert distiller(image=image).shape == (2, 100)
