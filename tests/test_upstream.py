"""mdistiller_ddkd.upstream.register() against a fake upstream ``mdistiller`` package written to a tmp dir."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest
import torch

FAKE_FILES = {
    "mdistiller/__init__.py": "",
    "mdistiller/distillers/__init__.py": textwrap.dedent("""
        class Vanilla: pass
        class KD: pass
        class DKD: pass
        distiller_dict = {"NONE": Vanilla, "KD": KD, "DKD": DKD}
    """),
    "mdistiller/engine/__init__.py": "",
    "mdistiller/engine/cfg.py": textwrap.dedent("""
        from yacs.config import CfgNode as CN
        CFG = CN()
        CFG.DISTILLER = CN()
        CFG.DISTILLER.TYPE = "NONE"
        CFG.KD = CN()
        CFG.KD.TEMPERATURE = 4
        CFG.DKD = CN()
        CFG.DKD.ALPHA = 1.0
        CFG.DKD.UPSTREAM_ONLY_KEY = 7
    """),
}


@pytest.fixture
def fake_upstream(tmp_path, monkeypatch):
    for rel, text in FAKE_FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "mdistiller" or m.startswith("mdistiller.")]:
        monkeypatch.delitem(sys.modules, name)
    yield
    for name in [m for m in sys.modules if m == "mdistiller" or m.startswith("mdistiller.")]:
        del sys.modules[name]


def test_register_adds_only_what_upstream_lacks(fake_upstream):
    from mdistiller_ddkd import upstream
    from mdistiller_ddkd.distillers import distiller_dict as ours

    theirs_module = importlib.import_module("mdistiller.distillers")
    cfg_module = importlib.import_module("mdistiller.engine.cfg")
    before = dict(theirs_module.distiller_dict)
    added = upstream.register()
    theirs = theirs_module.distiller_dict
    assert "DDKD" in added and "DDKD" in theirs and theirs["DDKD"] is ours["DDKD"]
    for name in ("DIFFKD", "DIST"):
        if name in ours:
            assert name in added
    for name, cls in before.items():  # upstream's entries untouched
        assert theirs[name] is cls
    assert not {"NONE", "KD", "DKD"} & set(added)
    assert "CRD" not in added  # needs the train-set size: never added
    cfg = cfg_module.CFG
    assert "DDKD" in cfg and cfg.DDKD.DKD.WARMUP == 20
    assert cfg.DKD.UPSTREAM_ONLY_KEY == 7 and "BETA" not in cfg.DKD  # existing node left as upstream's
    assert upstream.register() == []  # idempotent


def test_upstream_style_construction_and_training_step(fake_upstream):
    """Upstream builds ``Cls(student, teacher, cfg)`` from its CFG and calls forward with keywords."""
    from mdistiller_ddkd import upstream
    from mdistiller_ddkd.engine.cfg import build_default_config
    from mdistiller_ddkd.models import cifar_model_dict

    upstream.register()
    theirs = importlib.import_module("mdistiller.distillers").distiller_dict
    cfg = importlib.import_module("mdistiller.engine.cfg").CFG.clone()
    cfg.defrost()
    for key in ("DATASET", "SOLVER"):  # upstream's real CFG has these nodes; the fake one is minimal
        cfg[key] = build_default_config()[key].clone()
    cfg.DISTILLER.TYPE = "DDKD"
    torch.manual_seed(0)
    student = cifar_model_dict["resnet8"][0](num_classes=100)
    teacher = cifar_model_dict["resnet14"][0](num_classes=100)
    distiller = theirs["DDKD"](student, teacher, cfg)
    distiller.train()
    assert not distiller.teacher.training
    image, target = torch.randn(4, 3, 32, 32), torch.randint(0, 100, (4,))
    logits, losses = distiller(image=image, target=target, epoch=1)
    assert logits.shape == (4, 100)
    loss = sum(v.mean() for v in losses.values())
    loss.backward()
    assert distiller.get_extra_parameters() > 0
    assert all(p.requires_grad for p in distiller.get_learnable_parameters())
    distiller.eval()
    assert distiller(image=image).shape == (4, 100)


def test_without_upstream_a_clear_import_error(monkeypatch):
    import builtins

    from mdistiller_ddkd import upstream

    real_import = builtins.__import__

    def no_mdistiller(name, *args, **kwargs):
        if name == "mdistiller" or name.startswith("mdistiller."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    for name in [m for m in sys.modules if m == "mdistiller" or m.startswith("mdistiller.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_mdistiller)
    with pytest.raises(ImportError, match="megvii-research/mdistiller"):
        upstream.register()
