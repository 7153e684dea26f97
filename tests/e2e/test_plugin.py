"""The worked example of docs/extending.md, run for real: ``examples/plugin`` registers a
dataset, a model zoo and a method from outside the package, and the unchanged command-line tools train on
them — once with ``--plugins`` (module on PYTHONPATH), once through an installed entry point."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from tests import contracts
from tests.helpers import REPO_ROOT, TRAIN, run_cli

EXAMPLE_DIR = os.path.join(REPO_ROOT, "examples", "plugin")
MODULE = "ddkd_example_plugin"
QUICK = ["SOLVER.EPOCHS", "2", "SOLVER.DEVICE", "cpu", "LOG.SAVE_CHECKPOINT_FREQ", "1"]


def _env(*paths: str) -> dict:
    """PYTHONPATH with ``paths`` (and the repository), no plugins from the environment."""
    return {"PYTHONPATH": os.pathsep.join([*paths, REPO_ROOT]), "MDISTILLER_DDKD_PLUGINS": ""}


def _train_console() -> list:
    """The ``ddkd-train`` console script of this interpreter's environment, else its module."""
    script = shutil.which("ddkd-train", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "mdistiller_ddkd.cli.train"]


def _results(prefix: str, name: str) -> dict:
    with open(os.path.join(prefix, "example", name, "results.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """``tools/train.py --plugins ddkd_example_plugin --cfg examples/plugin/teacher.yaml`` (2 epochs)."""
    work = tmp_path_factory.mktemp("plugin_teacher")
    proc = run_cli([TRAIN, "--plugins", MODULE, "--cfg", os.path.join(EXAMPLE_DIR, "teacher.yaml"), *QUICK,
                    "LOG.PREFIX", str(work / "output")], cwd=str(work), env_extra=_env(EXAMPLE_DIR))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "output"


def test_plugin_dataset_model_and_config_reach_tools_train(teacher_run):
    results = _results(str(teacher_run), "teacher")
    assert results["finished"] and results["dataset"] == "mirror_digits" and results["method"] == "NONE"
    assert 0 <= results["best_acc"] <= 100
    student = torch.load(teacher_run / "example" / "teacher" / "student_best", weights_only=True)["model"]
    assert student["fc.weight"].shape == (10, 48)  # tiny_cnn_wide: 2 x 24 channels, 10 classes


def test_plugin_method_trains_through_an_entry_point_with_gpu_augment(teacher_run, tmp_path):
    site = tmp_path / "site"
    info = site / "ddkd_example_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ddkd-example-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[mdistiller_ddkd.plugins]\nexample = {MODULE}\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", **_env(str(site), EXAMPLE_DIR))
    teacher = teacher_run / "example" / "teacher" / "student_best"
    cmd = [*_train_console(), "--cfg", os.path.join(EXAMPLE_DIR, "pooled_hint.yaml"), *QUICK,
           "DISTILLER.TEACHER_CKPT", str(teacher), "DATASET.GPU_AUGMENT", "True", "LOG.PREFIX", str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = _results(str(tmp_path / "out"), "pooled_hint")
    assert results["finished"] and results["method"] == "POOLED_HINT" and results["dataset"] == "mirror_digits"
    assert all("train_loss_hint" in h for h in results["history"])
    latest = torch.load(tmp_path / "out" / "example" / "pooled_hint" / "latest", weights_only=True)["model"]
    assert "connector.weight" in latest and any(k.startswith("teacher.") for k in latest)
    student = torch.load(tmp_path / "out" / "example" / "pooled_hint" / "student_best", weights_only=True)["model"]
    assert student["fc.weight"].shape == (10, 16) and not any("connector" in k for k in student)


@pytest.mark.parametrize("plugins, expected", [
    ([], "unknown dataset (DATASET.TYPE) 'mirror_digits'; valid: "),
    (["--plugins", "no_such_plugin_module"], "cannot import plugin module 'no_such_plugin_module'"),
])
def test_a_missing_plugin_is_one_line_and_exit_code_2(plugins, expected, tmp_path):
    proc = run_cli([TRAIN, *plugins, "--cfg", os.path.join(EXAMPLE_DIR, "teacher.yaml"), *QUICK],
                   cwd=str(tmp_path), env_extra=_env())
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


# ------------------------------------------------------------------ in process, registries restored after
@pytest.fixture
def example_plugin(monkeypatch):
    """The example plugin imported here; every registry it touches is restored afterwards."""
    from mdistiller_ddkd.dataset.registry import DATASETS
    from mdistiller_ddkd.distillers import config_nodes, distiller_dict
    from mdistiller_ddkd.models import MODEL_ZOOS

    saved = [(registry, set(registry)) for registry in (DATASETS, MODEL_ZOOS, distiller_dict, config_nodes)]
    monkeypatch.syspath_prepend(EXAMPLE_DIR)
    sys.modules.pop(MODULE, None)
    try:
        yield importlib.import_module(MODULE)
    finally:
        for registry, names in saved:
            for name in set(registry) - names:
                registry.unregister(name)
        sys.modules.pop(MODULE, None)


def _matches_an_unflipped_crop(image, original, padding, mean, std) -> bool:
    """Whether the normalised (3, H, W) ``image`` is a crop of zero-padded ``original`` (H, W, 3) uint8."""
    h, w = original.shape[:2]
    padded = F.pad(original.permute(2, 0, 1).float(), (padding,) * 4)
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = (padded[:, dy:dy + h, dx:dx + w] / 255.0 - mean) / std
            if torch.allclose(crop, image, atol=1e-4):
                return True
    return False


def test_gpu_augment_never_mirrors_a_dataset_that_declares_hflip_false(example_plugin):
    from mdistiller_ddkd.dataset import get_dataset
    from mdistiller_ddkd.dataset.device_augment import random_crop_flip
    from mdistiller_ddkd.engine.cfg import load_config

    cfg = load_config(None, ["DATASET.TYPE", "mirror_digits", "DATASET.GPU_AUGMENT", "True", "SOLVER.BATCH_SIZE",
                             "50", "DISTILLER.TEACHER", "tiny_cnn", "DISTILLER.STUDENT", "tiny_cnn",
                             "DATASET.MIRROR_DIGITS.TRAIN_PER_CLASS", "10"])
    loader = get_dataset(cfg, device=torch.device("cpu"))[0]
    assert loader.augment.hflip is False and loader.augment.padding == 2
    originals = loader.images
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in example_plugin.channel_mean_std(originals.numpy()))
    checked = 0
    for epoch in (1, 2):
        loader.set_epoch(epoch)
        for image, _, index in loader:
            for x, i in zip(image, index):
                assert _matches_an_unflipped_crop(x, originals[i], 2, mean, std), f"sample {int(i)} was mirrored"
                checked += 1
    assert checked == 2 * len(originals)
    # the check has teeth: with flips allowed, some of the same images match no unflipped crop
    flipped, _, was_flipped = random_crop_flip(originals[:20], 2, torch.Generator().manual_seed(0), hflip=True)
    assert was_flipped.any()
    as_images = ((flipped.permute(0, 3, 1, 2).float() / 255.0) - mean) / std
    assert not all(_matches_an_unflipped_crop(x, o, 2, mean, std) for x, o in zip(as_images, originals[:20]))


def test_the_plugins_registrations_meet_the_registry_contracts(example_plugin, tmp_path):
    contracts.check_method_trains_one_step_within_the_contract("POOLED_HINT")
    contracts.check_method_evaluates_as_the_student_alone("POOLED_HINT")
    contracts.check_method_counts_exactly_its_own_parameters("POOLED_HINT")
    contracts.check_dataset_items_have_the_documented_layout("mirror_digits", tmp_path / "a")
    contracts.check_dataset_loaders_batch_in_the_documented_layout("mirror_digits", tmp_path / "b")
