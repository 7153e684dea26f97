"""``SOLVER.DETERMINISTIC`` on CPU: the switches it sets (and unsets), cuBLAS's workspace variable, the
one-line refusals where it cannot hold, and the provenance every run's results.json records."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
import re

import pytest
import torch

from mdistiller_ddkd.engine import determinism
from mdistiller_ddkd.engine.determinism import apply_determinism, refusing_nondeterministic_operations
from mdistiller_ddkd.errors import ConfigError
from tests.helpers import REPO_ROOT, assert_one_line_error, run_folder, tiny_run_overrides, train_cli

VARIABLE = "CUBLAS_WORKSPACE_CONFIG"


def _switches():
    return (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
            torch.backends.cudnn.benchmark)


@pytest.fixture(autouse=True)
def restore_global_state(monkeypatch):
    """Every test starts without the variable and leaves torch's switches as it found them."""
    monkeypatch.delenv(VARIABLE, raising=False)
    saved = (*_switches(), torch.is_deterministic_algorithms_warn_only_enabled())
    yield
    torch.use_deterministic_algorithms(saved[0], warn_only=saved[3])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], saved[2]


def test_on_it_sets_every_switch_and_the_cublas_workspace_and_off_unsets_them():
    torch.backends.cudnn.benchmark = True
    apply_determinism(True)
    assert _switches() == (True, True, False)
    assert os.environ[VARIABLE] == ":4096:8"
    apply_determinism(False)
    assert _switches()[:2] == (False, False)


@pytest.mark.parametrize("value", [":4096:8", ":16:8"])
def test_a_deterministic_workspace_the_user_set_is_kept(monkeypatch, value):
    monkeypatch.setenv(VARIABLE, value)
    apply_determinism(True)
    assert os.environ[VARIABLE] == value and torch.are_deterministic_algorithms_enabled()


def test_refused_in_one_line_with_another_workspace_or_after_cuda_started(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(VARIABLE, ":0:0")
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path, **{"SOLVER.DETERMINISTIC": "True"}))
    assert_one_line_error(code, err, "CUBLAS_WORKSPACE_CONFIG=':0:0'", ":4096:8")
    monkeypatch.delenv(VARIABLE)
    # CUDA cannot start on a machine without a GPU; this process is told it has
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path, **{"SOLVER.DETERMINISTIC": "True"}))
    assert_one_line_error(code, err, "CUDA has started", "CUBLAS_WORKSPACE_CONFIG=:4096:8")
    assert VARIABLE not in os.environ and not os.path.exists(run_folder(str(tmp_path)))
    monkeypatch.setenv(VARIABLE, ":16:8")  # set before CUDA started: fine
    assert train_cli(capsys, *tiny_run_overrides(tmp_path, **{"SOLVER.DETERMINISTIC": "True"}))[0] == 0


def _cpu_model() -> str:
    """The CPU's model as ``lscpu`` would name it, read here with a pattern of our own."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        text = ""
    match = re.search(r"^model name\s*:\s*(.*\S)\s*$", text, re.M)
    return match.group(1) if match else (platform.processor() or platform.machine())


def _sources_sha256() -> str:
    """The package's source hash computed here with pathlib: every ``.py`` file under mdistiller_ddkd/, by its
    path relative to the package."""
    package = os.path.join(REPO_ROOT, "mdistiller_ddkd")
    paths = sorted(str(p.relative_to(package)).replace(os.sep, "/") for p in pathlib.Path(package).rglob("*.py"))
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.encode() + b"\0" + (pathlib.Path(package) / path).read_bytes() + b"\0")
    return digest.hexdigest()


def test_the_source_hash_changes_with_any_source_byte(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    (package / "notes.txt").write_text("not code")
    monkeypatch.setattr(determinism, "_PACKAGE_DIR", str(package))
    hashes = []
    for change in (None, lambda: (package / "sub" / "b.py").write_text("y = 3\n"),
                   lambda: (package / "notes.txt").write_text("still not code")):
        if change:
            change()
        determinism.source_hash.cache_clear()
        hashes.append(determinism.source_hash())
    determinism.source_hash.cache_clear()
    expected = hashlib.sha256(b"a.py\0x = 1\n\0sub/b.py\0y = 2\n\0").hexdigest()
    assert hashes[0] == expected and hashes[1] != hashes[0] and hashes[2] == hashes[1]


@pytest.mark.parametrize("deterministic", [True, False])
def test_results_record_the_seed_the_setting_the_versions_and_the_device(capsys, tmp_path, deterministic):
    overrides = {"SOLVER.DETERMINISTIC": str(deterministic), "EXPERIMENT.SEED": "7"}
    code, _, err = train_cli(capsys, *tiny_run_overrides(tmp_path, **overrides))
    assert code == 0, err
    assert _switches()[:2] == (deterministic, deterministic)  # what the run computed under
    with open(os.path.join(run_folder(str(tmp_path)), "results.json")) as f:
        results = json.load(f)
    assert results["seed"] == 7
    assert results["provenance"] == {"deterministic": deterministic, "torch": torch.__version__, "cuda": None,
                                     "cudnn": None, "device": _cpu_model(), "threads": torch.get_num_threads(),
                                     "sources": _sources_sha256()}
    assert {"method", "best_acc", "last_acc", "history"} <= set(results)  # the keys tables read stay



def test_an_operation_without_a_deterministic_implementation_stops_in_one_line():
    apply_determinism(True)
    with pytest.raises(ConfigError, match=r"^SOLVER.DETERMINISTIC True: put_ has no deterministic implementation "
                                          r"on this device, so this run cannot be deterministic; turn "
                                          r"SOLVER.DETERMINISTIC off$"):
        with refusing_nondeterministic_operations():
            torch.zeros(3).put_(torch.tensor([0]), torch.tensor([1.0]))  # none on CPU either (torch's docs)
    with pytest.raises(RuntimeError, match="size"):  # any other error passes unchanged
        with refusing_nondeterministic_operations():
            torch.zeros(3) + torch.zeros(4)


PUT_PLUGIN = '''
import torch
import torch.nn.functional as F
from mdistiller_ddkd.distillers import Distiller, register_distiller


@register_distiller("PUTS")
class Puts(Distiller):
    needs_teacher = False

    def __init__(self, student, teacher, cfg):
        super().__init__(student, teacher)

    def forward_train(self, image, target, **kwargs):
        logits, _ = self.student(image)
        one = torch.zeros(1).put_(torch.tensor([0]), torch.tensor([1.0]))  # no deterministic implementation
        return logits, {"loss_ce": F.cross_entropy(logits, target) * one.sum()}
'''


def test_a_method_using_such_an_operation_trains_but_not_deterministically(capsys, tmp_path, monkeypatch):
    from mdistiller_ddkd.distillers import distiller_dict

    (tmp_path / "put_plugin.py").write_text(PUT_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        runs = [train_cli(capsys, "--plugins", "put_plugin", *tiny_run_overrides(
            tmp_path / flag, **{"DISTILLER.TYPE": "PUTS", "SOLVER.DETERMINISTIC": flag})) for flag in ("True", "False")]
    finally:
        distiller_dict.unregister("PUTS")
    assert_one_line_error(runs[0][0], runs[0][2], "put_ has no deterministic implementation on this device")
    assert runs[1][0] == 0, runs[1][2]
