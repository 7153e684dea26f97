"""The model zoo against mdistiller's reference: state-dict keys/shapes, parameter counts, output shapes
and (with deterministic weights and inputs) the logits and feature statistics."""

from __future__ import annotations

import math
import os
from typing import Dict, List

import pytest
import torch

from mdistiller_ddkd.models import cifar_model_dict, get_model, imagenet_model_dict

CIFAR_NAMES = [
    "resnet8", "resnet14", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "resnet8x4",
    "resnet32x4", "ResNet18", "ResNet50", "wrn_16_1", "wrn_16_2", "wrn_40_1", "wrn_40_2", "vgg8", "vgg11",
    "vgg13", "vgg16", "vgg19", "MobileNetV2", "ShuffleV1", "ShuffleV2",
]
IMAGENET_NAMES = ["ResNet18", "ResNet34", "ResNet50", "ResNet101", "MobileNetV1"]
TEACHERS = ["resnet56", "resnet110", "resnet32x4", "ResNet50", "wrn_40_2", "vgg13"]
CASES = [("cifar100", n) for n in CIFAR_NAMES] + [("imagenet", n) for n in IMAGENET_NAMES]



def build(dataset: str, name: str) -> torch.nn.Module:
    num_classes = 100 if dataset == "cifar100" else 1000
    return get_model(name, dataset=dataset, num_classes=num_classes)


# --------------------------------------------------------------------------------------------------
# the reference recipe: deterministic weights and inputs
# --------------------------------------------------------------------------------------------------
def recipe_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Entry i (0-based, state-dict order), n = numel, s = sin(0.731*arange(n) + 0.1*i) in float64:
    integer entries unchanged; running_mean = 0.1*s; running_var = 1 + 0.5*s**2; dim >= 2:
    s*sqrt(3/(n/shape[0])); other weights 1 + 0.1*s; everything else 0.1*s; cast to float32."""
    out = {}
    state = model.state_dict()
    base = torch.arange(max(v.numel() for v in state.values()), dtype=torch.float64)
    for i, (key, value) in enumerate(state.items()):
        if not value.is_floating_point():
            out[key] = value.clone()
            continue
        n = value.numel()
        # in-place ops (same arithmetic as the recipe) keep this cheap for the 44M-parameter models
        s = base[:n].mul(0.731).add_(0.1 * i).sin_().reshape(value.shape)
        if key.endswith("running_mean"):
            v = s.mul_(0.1)
        elif key.endswith("running_var"):
            v = s.mul_(s).mul_(0.5).add_(1)
        elif value.dim() >= 2:
            v = s.mul_(math.sqrt(3.0 / (n / value.shape[0])))
        elif key.endswith("weight"):
            v = s.mul_(0.1).add_(1)
        else:
            v = s.mul_(0.1)
        out[key] = v.to(torch.float32)
    return out


def recipe_input(dataset: str) -> torch.Tensor:
    """sin(0.013*arange(B*3*H*W)) in float64, shaped (B, 3, H, W), cast to float32."""
    b, h = (2, 32) if dataset == "cifar100" else (1, 224)
    n = b * 3 * h * h
    return torch.sin(0.013 * torch.arange(n, dtype=torch.float64)).reshape(b, 3, h, h).to(torch.float32)


def stats(t: torch.Tensor) -> List[float]:
    t = t.detach().to(torch.float64)
    return [t.sum().item(), (t * t).sum().item(), t.abs().mean().item()]


def assert_stats_close(got: List[float], want: List[float], what: str, scale: float) -> None:
    # sums can nearly cancel: judge them against the tensor's magnitude (sum of |x| ~ mean|x| * numel)
    for g, w, label in zip(got, want, ("sum", "sum of squares", "mean |x|")):
        atol = 1e-4 * scale if label == "sum" else 1e-8
        assert math.isclose(g, w, rel_tol=1e-4, abs_tol=atol), f"{what} {label}: got {g!r}, want {w!r}"


# --------------------------------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------------------------------
def test_registry_names_and_teachers(models_reference) -> None:
    assert set(cifar_model_dict) == set(CIFAR_NAMES)
    assert set(models_reference["cifar100"]) == set(CIFAR_NAMES)
    assert set(models_reference["imagenet"]) == set(IMAGENET_NAMES)
    assert set(imagenet_model_dict) == set(IMAGENET_NAMES)
    for name, (_, path) in cifar_model_dict.items():
        if name in TEACHERS:
            assert path == f"download_ckpts/cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth"
            assert models_reference["cifar100"][name]["teacher_checkpoint"].endswith(
                f"cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth"
            )
        else:
            assert path is None
    assert all(path is None for _, path in imagenet_model_dict.values())


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(KeyError, match="resnet32x4"):
        get_model("resnet9000")
    with pytest.raises(KeyError, match="MobileNetV1"):
        get_model("resnet9000", dataset="imagenet")


@pytest.mark.parametrize("dataset,name", CASES)
def test_structure_and_outputs(dataset: str, name: str, models_reference, outputs_reference) -> None:
    ref = models_reference[dataset][name]
    ref_out = outputs_reference[dataset][name]
    model = build(dataset, name)

    sd = model.state_dict()
    assert [(k, list(v.shape)) for k, v in sd.items()] == [(k, list(s)) for k, s in ref["state_dict"]]
    assert sum(p.numel() for p in model.parameters()) == ref["num_params"]

    if ref.get("stage_channels") is None:
        with pytest.raises(NotImplementedError):
            model.get_stage_channels()
    else:
        assert model.get_stage_channels() == ref["stage_channels"]

    if name.startswith("Shuffle"):
        with pytest.raises(NotImplementedError):
            model.get_bn_before_relu()
    else:
        bns = model.get_bn_before_relu()
        assert bns and all(isinstance(m, torch.nn.BatchNorm2d) for m in bns)
        owned = {id(m) for m in model.modules()}
        assert all(id(m) in owned for m in bns)

    model.load_state_dict(recipe_state_dict(model), strict=True)
    # float64: the reference's own float32 rounding is then the only error (our float32 kernels differ by CPU)
    model.eval().double()
    x = recipe_input(dataset).double()
    with torch.no_grad():
        logits, feats = model(x)
    batch = x.shape[0]

    assert sorted(k for k, v in feats.items() if not (isinstance(v, list) and not v)) == sorted(ref["feat_keys"])
    assert list(logits.shape) == [batch] + ref["logits_shape"][1:]
    assert list(feats["pooled_feat"].shape) == [batch] + ref["pooled_feat"][1:]
    for key in ("feats", "preact_feats"):
        want = [[batch] + s[1:] for s in ref[key]]
        assert [list(t.shape) for t in feats.get(key, [])] == want, key

    # the reference was computed in float32: its rounding grows with the logits' scale (worst seen: 5e-6 of
    # the largest |logit|), so the absolute tolerance follows that scale
    want_logits = torch.tensor(ref_out["logits"], dtype=torch.float64)
    torch.testing.assert_close(logits, want_logits, rtol=1e-4, atol=2e-5 * max(1.0, float(want_logits.abs().max())))
    for key in ("feats", "preact_feats"):
        for i, (t, want) in enumerate(zip(feats.get(key, []), ref_out.get(key, []))):
            assert_stats_close(stats(t), want, f"{name} {key}[{i}]", scale=want[2] * t.numel())
    t = feats["pooled_feat"]
    want = ref_out["pooled_feat"]
    assert_stats_close(stats(t), want, f"{name} pooled_feat", scale=want[2] * t.numel())


def test_train_mode_forward_and_num_classes() -> None:
    model = cifar_model_dict["resnet8x4"][0](num_classes=10)
    model.train()
    logits, feats = model(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 10) and feats["pooled_feat"].shape == (4, 256)
    logits.sum().backward()


@pytest.mark.parametrize("name", ["resnet8", "wrn_16_2", "vgg8", "ShuffleV2"])
def test_checkpoint_round_trip(name: str, tmp_path) -> None:
    """A checkpoint in mdistiller's format ({"model": state_dict}) loads with strict=True."""
    torch.manual_seed(0)
    src = cifar_model_dict[name][0](num_classes=100)
    path = os.path.join(str(tmp_path), f"{name}_vanilla", "ckpt_epoch_240.pth")
    os.makedirs(os.path.dirname(path))
    torch.save({"model": src.state_dict(), "epoch": 240, "best_acc": 0.0}, path)

    dst = cifar_model_dict[name][0](num_classes=100)
    dst.load_state_dict(torch.load(path, map_location="cpu")["model"], strict=True)
    src.eval()
    dst.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(src(x)[0], dst(x)[0])


def test_imagenet_pretrained_offline_error(monkeypatch, tmp_path) -> None:
    """Without network access (or a cached file) pretrained=True raises a clear RuntimeError."""
    import torchvision.models._api as api

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="could not download|Could not download"):
        get_model("ResNet18", dataset="imagenet", num_classes=1000, pretrained=True)
