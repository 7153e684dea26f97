"""``timm/<name>`` models: the adapter's outputs against timm's own computations, names and refusals, teacher
and student weights (``.safetensors``, our checkpoints, pretrained tags offline), DDKD/DIFFKD on a timm pair."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from mdistiller_ddkd.distillers import get_distiller_class
from mdistiller_ddkd.engine.build import build_student, build_teacher
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.errors import CheckpointMismatchError, ConfigError, MissingInputError, UnknownNameError
from mdistiller_ddkd.models import get_model
from mdistiller_ddkd.models.timm_adapter import create_timm
from tests.helpers import require_extra

#: timm name -> create_model arguments the adapter adds at 32x32 (a fixed-size ViT gets img_size)
ARCHITECTURES = {"test_resnet": {}, "mobilenetv3_small_050": {}, "test_convnext": {},
                 "test_efficientnet": {}, "test_vit": {"img_size": (32, 32)}}
TAG = "test_resnet.r160_in1k"  #: a pretrained tag (1000 classes) whose weights are never on this machine


@pytest.fixture
def timm():
    return require_extra("timm", "timm")


def _image(n=2, seed=3):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _cfg(*opts):
    return load_config(None, ["DISTILLER.TEACHER", "timm/test_resnet", "DISTILLER.STUDENT", "timm/test_resnet",
                              "DATASET.DOWNLOAD", "False", *opts])


def _stage_outputs(model: nn.Module, x: torch.Tensor):
    """The outputs of the modules timm's ``feature_info`` names, caught by forward hooks during ``model(x)``
    (tokens as NCHW maps): the stage maps by a path other than ``forward_intermediates``."""
    caught = []
    hooks = [model.get_submodule(info["module"]).register_forward_hook(lambda m, i, out: caught.append(out))
             for info in model.feature_info]
    model(x)
    for hook in hooks:
        hook.remove()
    prefix = getattr(model, "num_prefix_tokens", 0)
    grid = [s // 16 for s in x.shape[-2:]]
    return [o if o.dim() == 4 else o[:, prefix:].reshape(o.shape[0], *grid, -1).permute(0, 3, 1, 2) for o in caught]


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_outputs_are_timms_own_for_the_same_weights(timm, name):
    torch.manual_seed(0)
    model = get_model(f"timm/{name}", "cifar100", 10).eval()
    reference = timm.create_model(name, num_classes=10, **ARCHITECTURES[name]).eval()
    reference.load_state_dict(model.state_dict(), strict=True)  # the same keys and shapes: timm's layout
    x = _image()
    with torch.no_grad():
        logits, feats = model(x)
        final = reference.forward_features(x)
        torch.testing.assert_close(logits, reference(x))
        torch.testing.assert_close(feats["pooled_feat"], reference.forward_head(final, pre_logits=True))
        expected = _stage_outputs(reference, x)
    if final.dim() == 4:  # CNNs: the last map is the one the head pools
        torch.testing.assert_close(feats["feats"][-1], final)
    assert "preact_feats" not in feats
    assert len(feats["feats"]) - len(expected) == int(name == "test_efficientnet")  # + its head convolution
    for got, want in zip(feats["feats"], expected):
        torch.testing.assert_close(got, want)
    assert model.get_stage_channels() == [f.shape[1] for f in feats["feats"]]


def test_a_fixed_size_vit_gets_the_datasets_size_or_is_refused_in_one_line():
    vit = get_model("timm/test_vit", "cifar100", 10)
    assert tuple(vit.patch_embed.img_size) == (32, 32)
    with pytest.raises(ConfigError, match="cannot run on 8x8 images") as err:
        create_timm("timm/test_vit", 10, (8, 8))
    assert "\n" not in str(err.value)


def test_names_are_validated_with_the_config(timm):
    assert _cfg().DISTILLER.STUDENT == "timm/test_resnet"
    with pytest.raises(UnknownNameError) as err:
        _cfg("DISTILLER.STUDENT", "timm/no_such_net")
    assert "unknown timm model 'no_such_net'" in err.value.args[0] and "timm.list_models" in err.value.args[0]
    with pytest.raises(UnknownNameError) as err:
        _cfg("DISTILLER.STUDENT", "resnet9")
    assert "(DISTILLER.TEACHER / STUDENT) 'resnet9'" in err.value.args[0] and "timm/<model name>" in err.value.args[0]


def test_without_timm_a_timm_name_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # what `import timm` meets where it is not installed
    with pytest.raises(ConfigError, match=r"pip install 'mdistiller-ddkd\[timm\]'") as err:
        _cfg()
    assert "\n" not in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        _cfg("DISTILLER.STUDENT", "resnet9", "DISTILLER.TEACHER", "resnet8")
    assert "need timm: pip install 'mdistiller-ddkd[timm]'" in err.value.args[0]


def test_constructor_arguments_come_from_the_config(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("DISTILLER:\n  TIMM:\n    STUDENT_KWARGS:\n      drop_rate: 0.25\n")
    cfg = load_config(str(path), ["DISTILLER.STUDENT", "timm/test_resnet", "DISTILLER.TEACHER", "resnet8"])
    assert build_student(cfg, 10).drop_rate == 0.25
    cfg = load_config(str(path), ["DISTILLER.STUDENT", "resnet8", "DISTILLER.TEACHER", "resnet8"])
    with pytest.raises(ConfigError, match="apply to timm/ models only"):
        build_student(cfg, 10)


# ------------------------------------------------------------------------------------------------ weights
def _random_state(timm, name="test_resnet", num_classes=100, seed=7):
    torch.manual_seed(seed)
    return timm.create_model(name, num_classes=num_classes).state_dict()


def _assert_weights(model: nn.Module, state, skip=()):
    for key, value in state.items():
        if not key.startswith(skip):
            assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("layout", ["safetensors", "ours", "timm_train"])
def test_a_teacher_loads_from_a_checkpoint_file(timm, tmp_path, layout):
    from safetensors.torch import save_file

    state = _random_state(timm)
    path = str(tmp_path / ("teacher.safetensors" if layout == "safetensors" else "teacher.pth"))
    if layout == "safetensors":
        save_file(state, path)
    else:
        torch.save({"model": state} if layout == "ours" else {"state_dict": state, "epoch": 3}, path)
    teacher = build_teacher(_cfg("DISTILLER.TEACHER_CKPT", path), 100)
    _assert_weights(teacher, state)


def test_a_teacher_checkpoint_of_another_shape_is_refused(timm, tmp_path):
    from safetensors.torch import save_file

    path = str(tmp_path / "teacher.safetensors")
    save_file(_random_state(timm, num_classes=10), path)
    with pytest.raises(CheckpointMismatchError) as err:
        build_teacher(_cfg("DISTILLER.TEACHER_CKPT", path), 100)
    assert "fc.weight: checkpoint (10, 96) vs model (100, 96)" in str(err.value)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """Empty Hugging Face and torch hub caches under ``tmp_path``; returns the Hugging Face one."""
    from huggingface_hub import constants

    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "torch_hub"))
    yield cache
    torch.hub.set_dir(previous)


def _cache_file(cache, repo: str, state) -> None:
    """``state`` as ``model.safetensors`` of ``repo`` in the Hugging Face cache layout."""
    from safetensors.torch import save_file

    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text("0123abcd")
    (root / "snapshots" / "0123abcd").mkdir(parents=True)
    save_file(state, str(root / "snapshots" / "0123abcd" / "model.safetensors"))


def test_a_pretrained_tag_without_its_file_offline_is_one_line_naming_it(timm, hub):
    cfg = _cfg("DISTILLER.TEACHER", f"timm/{TAG}", "DATASET.DOWNLOAD", "True")
    with pytest.raises(MissingInputError, match=f"timm/{TAG}.*not in the local cache") as err:
        build_teacher(cfg, 1000)
    assert "\n" not in str(err.value)


def test_a_pretrained_tag_with_downloads_off_is_refused_without_trying_the_network(timm, hub, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(MissingInputError, match="downloads are off"):
        build_teacher(_cfg("DISTILLER.TEACHER", f"timm/{TAG}"), 1000)


def test_a_pretrained_teacher_must_classify_the_datasets_classes(timm, hub):
    with pytest.raises(MissingInputError, match="classify 1000 classes, cifar100 has 100"):
        build_teacher(_cfg("DISTILLER.TEACHER", f"timm/{TAG}"), 100)


def test_a_cached_pretrained_tag_loads_from_the_cache(timm, hub):
    state = _random_state(timm, num_classes=1000)
    _cache_file(hub, f"timm/{TAG}", state)
    _assert_weights(build_teacher(_cfg("DISTILLER.TEACHER", f"timm/{TAG}"), 1000), state)
    # a student starts from the same file when asked, with a fresh classifier for its classes
    student = build_student(_cfg("DISTILLER.STUDENT", f"timm/{TAG}", "DISTILLER.TIMM.STUDENT_PRETRAINED", "True"), 10)
    _assert_weights(student, state, skip=("fc.",))
    assert student.fc.out_features == 10
    assert not torch.equal(build_student(_cfg("DISTILLER.STUDENT", f"timm/{TAG}"), 10).conv1[0].weight,
                           state["conv1.0.weight"])  # off by default


# --------------------------------------------------------------------------------------- DDKD and DIFFKD
class _Direct(nn.Module):
    """A timm model as DDKD reads it, computed by timm's own forward_features / forward_head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        final = self.model.forward_features(x)
        return self.model.forward_head(final), {"feats": [final],
                                                 "pooled_feat": self.model.forward_head(final, pre_logits=True)}


@pytest.mark.parametrize("method", ["DDKD", "DIFFKD"])
def test_diffusion_methods_size_and_compute_as_on_timms_own_tensors(timm, method):
    cfg = _cfg("DISTILLER.TYPE", method)
    torch.manual_seed(0)
    teacher, student = get_model("timm/test_resnet", "cifar100", 100), get_model("timm/test_convnext", "cifar100", 100)
    direct_t, direct_s = (timm.create_model(n, num_classes=100) for n in ("test_resnet", "test_convnext"))
    direct_t.load_state_dict(teacher.state_dict())
    direct_s.load_state_dict(student.state_dict())
    cls = get_distiller_class(method)
    torch.manual_seed(1)
    adapted = cls(student, teacher, cfg).train()
    torch.manual_seed(1)
    direct = cls(_Direct(direct_s), _Direct(direct_t), cfg).train()

    def own(distiller):
        return {k: v for k, v in distiller.state_dict().items() if not k.startswith(("student.", "teacher."))}

    assert {k: v.shape for k, v in own(adapted).items()} == {k: v.shape for k, v in own(direct).items()}
    shapes = {tuple(v.shape) for v in own(adapted).values()}
    assert any(direct_t.num_features in s for s in shapes) and any(direct_s.num_features in s for s in shapes)
    image, target = _image(4), torch.tensor([1, 5, 7, 9])
    torch.manual_seed(2)
    logits, losses = adapted(image=image, target=target, epoch=40)
    torch.manual_seed(2)
    logits_direct, losses_direct = direct(image=image, target=target, epoch=40)
    torch.testing.assert_close(logits, logits_direct)
    assert set(losses) == set(losses_direct) and len(losses) == 5
    for key in losses:
        torch.testing.assert_close(losses[key], losses_direct[key], msg=key)
