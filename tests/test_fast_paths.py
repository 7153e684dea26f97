"""The diffusion modules' faster formulations compute what the plain ones compute (float32, eager, against
the same step with ``fast_paths(False)``: plain convolutions), on maps of the sizes the pairs produce (8×8,
2×2) and on the logits (1×1): every loss term within ‖Δ‖/‖ref‖ ≤ 1e-5, the whole gradient within
‖Δg‖/‖g‖ ≤ 1e-5, and every parameter's gradient within ‖Δg_p‖ ≤ 1e-5·‖g‖.

Why the gradient is held to the whole gradient's norm: some parameters' gradients are sums that nearly
cancel (e.g. a bias followed by BatchNorm is zero in exact arithmetic; the first BatchNorm of MobileNetV2
has ‖g_p‖ ≈ 2e-4 against ‖g‖ ≈ 1), so float32 rounding decides their relative error. The unchanged code
run with 2 threads instead of 1 differs from itself by up to 4e-3 on such a tensor, relative to its own
norm, while the global measure stays at 5e-6 — the same level as the fast paths' difference."""

from __future__ import annotations

import pytest
import torch

from mdistiller_ddkd.diffusion.blocks import Conv3x3, GlobalAvgPool, PointwiseConv2d, fast_paths, mse_loss
from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.models import get_model

TOLERANCE = 1e-5


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


@pytest.mark.parametrize("kind,shape", [("1x1", (8, 48, 8, 8)), ("1x1", (8, 48, 2, 2)), ("1x1", (8, 48, 1, 1)),
                                        ("1x1", (8, 48, 3, 5)), ("3x3", (8, 48, 2, 2)), ("3x3", (8, 48, 1, 2)),
                                        ("3x3", (8, 48, 1, 1)), ("3x3", (8, 48, 2, 1)), ("3x3", (8, 48, 3, 3))])
def test_a_fast_convolution_is_the_convolution(kind, shape):
    torch.manual_seed(0)
    conv = PointwiseConv2d(48, 20) if kind == "1x1" else Conv3x3(48, 20)
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last).requires_grad_()
    weights = torch.linspace(-1, 1, 8 * 20 * shape[2] * shape[3]).view(8, 20, shape[2], shape[3])
    results = {}
    for fast in (True, False):
        with fast_paths(fast):
            out = conv(x)
            grads = torch.autograd.grad((out * weights).sum(), [x, conv.weight, conv.bias])
        results[fast] = (out, *grads)
    for ours, plain in zip(results[True], results[False]):
        assert ours.shape == plain.shape and _relative(ours, plain) < TOLERANCE
    assert results[True][0].is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("method", ["DDKD", "DIFFKD"])
@pytest.mark.parametrize("teacher,student", [("resnet8x4", "resnet8"), ("resnet8x4", "MobileNetV2")])
def test_every_loss_and_gradient_matches_the_plain_step(method, teacher, student):
    cfg = load_config(None, ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", teacher, "DISTILLER.STUDENT", student])
    torch.manual_seed(0)
    distiller = distiller_dict[method].build(get_model(student), get_model(teacher), cfg, 16).train()
    image, target = torch.randn(16, 3, 32, 32), torch.randint(0, 100, (16,))
    params = [p for p in distiller.get_learnable_parameters()]
    runs = {}
    for fast in (True, False):
        state = {k: v.clone() for k, v in distiller.state_dict().items()}  # BN running stats move each step
        torch.manual_seed(1)
        with fast_paths(fast):
            _, losses = distiller(image=image, target=target, epoch=30)
            grads = torch.autograd.grad(sum(losses.values()), params, allow_unused=True)
        runs[fast] = ({k: v.detach() for k, v in losses.items()}, grads)
        distiller.load_state_dict(state)
    (losses, grads), (plain_losses, plain_grads) = runs[True], runs[False]
    assert losses.keys() == plain_losses.keys()
    for key in losses:
        assert _relative(losses[key], plain_losses[key]) < TOLERANCE, key
    assert [g is None for g in grads] == [g is None for g in plain_grads]
    pairs = [(p, ours.double(), plain.double()) for p, ours, plain in zip(params, grads, plain_grads)
             if ours is not None]
    total = torch.cat([plain.flatten() for _, _, plain in pairs]).norm()
    assert float(torch.cat([(ours - plain).flatten() for _, ours, plain in pairs]).norm() / total) < TOLERANCE
    for param, ours, plain in pairs:
        assert float((ours - plain).norm() / total) < TOLERANCE, tuple(param.shape)


def test_the_layout_keeping_mean_and_mse_are_the_plain_ones_with_channels_last_gradients():
    torch.manual_seed(0)
    x = torch.randn(8, 48, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = torch.randn(8, 48, 4, 4).contiguous(memory_format=torch.channels_last)
    plain_pool = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
    for fast in (True, False):
        with fast_paths(fast):
            loss, pooled = mse_loss(x, y), GlobalAvgPool()(x)
            grad_loss, = torch.autograd.grad(loss, x)
            grad_pool, = torch.autograd.grad(pooled.square().sum(), x)
        assert _relative(loss, torch.nn.functional.mse_loss(x, y)) < 1e-6
        assert _relative(pooled, plain_pool) < 1e-6
        assert _relative(grad_loss, 2 * (x - y) / x.numel()) < 1e-6
        assert _relative(grad_pool, (2 * plain_pool / 16)[:, :, None, None].expand_as(x)) < 1e-6
        if fast:  # the point of the fast forms: no NCHW gradient reaches the channels-last modules before them
            assert grad_loss.is_contiguous(memory_format=torch.channels_last)
            assert grad_pool.is_contiguous(memory_format=torch.channels_last)
    contiguous = x.detach().contiguous()  # other layouts take the plain path
    assert _relative(mse_loss(contiguous, y), torch.nn.functional.mse_loss(contiguous, y)) < 1e-6
