"""DDKD on every teacher/student pair of the paper's Tables 2 and 3 (CIFAR-100) and both ImageNet pairs:
real models, two images, one forward/backward."""

from __future__ import annotations

import os

import pytest
import torch

from mdistiller_ddkd.distillers import get_distiller_class
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.models import get_model
from tests.helpers import CIFAR_PAIRS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: DKD's β per CIFAR pair (DDKD.md)
DKD_BETA = {
    "res56_res20": 2.0, "res110_res32": 2.0,
    "vgg13_vgg8": 6.0, "vgg13_mv2": 6.0, "wrn40_2_wrn_16_2": 6.0, "wrn40_2_wrn_40_1": 6.0,
}
SPATIALLY_MISMATCHED = ("res32x4_shuv1", "res32x4_shuv2", "res50_mv2", "vgg13_mv2", "wrn40_2_shuv1")
MOBILE_STUDENTS = ("ShuffleV1", "ShuffleV2", "MobileNetV2")
#: (teacher, student, DKD β, test input size): MobileNetV1's fixed 7×7 average pool needs 224×224
IMAGENET_PAIRS = {"r34_r18": ("ResNet34", "ResNet18", 0.5, 64), "r50_mv1": ("ResNet50", "MobileNetV1", 2.0, 224)}



def step(distiller, image, target):
    """One training forward/backward; returns (losses, the aligned-size flag)."""
    distiller.train()
    _, losses = distiller(image=image, target=target, epoch=30)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in distiller.teacher.parameters())
    assert all(p.grad is not None for p in distiller.feat_branch.noise_net.parameters())
    assert all(p.grad is not None for p in distiller.logit_branch.adapter.parameters())
    return losses


@pytest.mark.parametrize("method", ["ddkd", "diffkd"])
@pytest.mark.parametrize("pair", sorted(CIFAR_PAIRS))
def test_cifar_pair_config_builds_and_trains(pair, method):
    teacher_name, student_name = CIFAR_PAIRS[pair]
    cfg = load_config(os.path.join(REPO, "configs", "cifar100", method, f"{pair}.yaml"))
    names = (cfg.DISTILLER.TYPE, cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT)
    assert names == (method.upper(), teacher_name, student_name)
    assert cfg.SOLVER.LR == (0.01 if student_name in MOBILE_STUDENTS else 0.05)
    assert (cfg.SOLVER.BATCH_SIZE, cfg.SOLVER.EPOCHS, list(cfg.SOLVER.LR_DECAY_STAGES)) == (64, 240, [150, 180, 210])
    assert cfg.SOLVER.WEIGHT_DECAY == 0.0005
    node = cfg[method.upper()]
    assert node.DKD.BETA == DKD_BETA.get(pair, 8.0)
    assert (node.DKD.ALPHA, node.DKD.T, node.DKD.WARMUP) == (1.0, 4.0, 20)
    if method == "diffkd":  # same recipe as DDKD's file; real models are exercised once, for DDKD
        ddkd = load_config(os.path.join(REPO, "configs", "cifar100", "ddkd", f"{pair}.yaml"))
        same = node.clone()
        same.defrost()
        same.LOGIT_LOSS = "dkd"
        assert same == ddkd.DDKD and cfg.SOLVER == ddkd.SOLVER
        return
    torch.manual_seed(0)
    teacher, student = get_model(teacher_name), get_model(student_name)
    distiller = get_distiller_class(cfg.DISTILLER.TYPE)(student, teacher, cfg)
    image, target = torch.randn(2, 3, 32, 32), torch.tensor([3, 97])
    with torch.no_grad():
        ft, fs = teacher(image)[1]["feats"][-1], student.eval()(image)[1]["feats"][-1]
    ca = ft.shape[1] // 2
    assert distiller.feat_branch.proj_in.in_channels == fs.shape[1]
    assert distiller.feat_branch.proj_in.out_channels == ca == distiller.autoencoder.encoder[0].out_channels
    losses = step(distiller, image, target)
    assert set(losses) == {"loss_ce", "loss_kd_feat", "loss_kd_logit", "loss_diff", "loss_ae"}
    # the Table 3 pairs (and only they) have maps of different size, so spatial alignment is exercised
    assert (ft.shape[-2:] != fs.shape[-2:]) == (pair in SPATIALLY_MISMATCHED)


@pytest.mark.parametrize("pair", sorted(IMAGENET_PAIRS))
def test_imagenet_pair_builds_and_trains_at_small_input(pair):
    teacher_name, student_name, beta, size = IMAGENET_PAIRS[pair]
    cfg = load_config(os.path.join(REPO, "configs", "imagenet", pair, "ddkd.yaml"))
    assert (cfg.DATASET.TYPE, cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT) == ("imagenet", teacher_name, student_name)
    assert (cfg.DDKD.DKD.ALPHA, cfg.DDKD.DKD.BETA, cfg.DDKD.DKD.T, cfg.DDKD.DKD.WARMUP) == (1.0, beta, 1.0, 1)
    assert (cfg.SOLVER.EPOCHS, cfg.SOLVER.BATCH_SIZE, cfg.SOLVER.LR, list(cfg.SOLVER.LR_DECAY_STAGES)) == (
        100, 256, 0.1, [30, 60, 90])
    diffkd = load_config(os.path.join(REPO, "configs", "imagenet", pair, "diffkd.yaml"))
    assert diffkd.DISTILLER.TYPE == "DIFFKD" and diffkd.DIFFKD.LOGIT_LOSS == "kl"
    same = diffkd.DIFFKD.clone()
    same.defrost()
    same.LOGIT_LOSS = "dkd"
    assert same == load_config(os.path.join(REPO, "configs", "imagenet", pair, "ddkd.yaml")).DDKD
    torch.manual_seed(0)
    teacher = get_model(teacher_name, "imagenet", num_classes=1000)
    student = get_model(student_name, "imagenet", num_classes=1000)
    distiller = get_distiller_class("DDKD")(student, teacher, cfg)
    assert distiller.logit_branch.proj_in.in_channels == 1000
    step(distiller, torch.randn(2, 3, size, size), torch.tensor([0, 999]))
