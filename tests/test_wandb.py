"""The ``LOG.WANDB`` hook's checks, which run before anything is written: wandb missing, a project name or
tag W&B rejects, the run id kept in the run folder, tags split as mdistiller splits them, suites grouping
their runs. What an offline run logs is read back in ``tests/e2e/test_wandb_cli.py``."""

from __future__ import annotations

import sys

import pytest

from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.hooks import BUILTIN_HOOKS, build_hooks, wandb_hook
from mdistiller_ddkd.engine.hooks.wandb import RUN_ID_FILE, WandbHook, read_run_id, run_id_for, split_tags
from mdistiller_ddkd.engine.resume import is_harmless
from mdistiller_ddkd.errors import DataFileError
from mdistiller_ddkd.suite.plan import plan_suite
from mdistiller_ddkd.suite.spec import load_suite
from tests.helpers import assert_one_line_error, call_cli, require_extra, tiny_run_overrides


def test_the_hook_is_built_in_and_off_unless_asked_for():
    assert wandb_hook in BUILTIN_HOOKS
    assert wandb_hook(load_config()) is None
    assert not any(isinstance(h, WandbHook) for h in build_hooks(load_config()))


def test_tags_are_split_on_commas():
    assert split_tags("default") == ["default"]
    assert split_tags("kd, res32x4 ,,cifar") == ["kd", "res32x4", "cifar"]
    assert split_tags(" , ") == []


def test_without_wandb_the_run_stops_in_one_line_before_its_folder_exists(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as on a machine without the [wandb] extra
    prefix = tmp_path / "out"
    code, _, err = call_cli(capsys, train_main, *tiny_run_overrides(prefix, **{"LOG.WANDB": "True"}))
    assert_one_line_error(code, err, "LOG.WANDB", "pip install 'mdistiller-ddkd[wandb]'")
    assert not prefix.exists()


@pytest.mark.parametrize("key, value, needle", [
    ("EXPERIMENT.PROJECT", "team#7", "W&B rejects EXPERIMENT.PROJECT 'team#7'"),
    ("EXPERIMENT.PROJECT", "p" * 129, "exceeded 128 characters"),
    ("EXPERIMENT.TAG", "ok," + "t" * 65, "65 characters"),
])
def test_a_name_wandb_rejects_stops_in_one_line_before_its_folder_exists(key, value, needle, capsys, tmp_path):
    require_extra("wandb", "wandb")
    prefix = tmp_path / "out"
    code, _, err = call_cli(capsys, train_main, *tiny_run_overrides(prefix, **{"LOG.WANDB": "True", key: value}))
    assert_one_line_error(code, err, needle)
    assert not prefix.exists()


def test_the_run_id_is_written_once_and_kept(tmp_path):
    folder = str(tmp_path)
    assert read_run_id(folder) is None
    run_id = run_id_for(folder)
    assert len(run_id) == 8 and run_id.isalnum() and run_id == run_id.lower()
    assert run_id_for(folder) == run_id == read_run_id(folder)
    (tmp_path / RUN_ID_FILE).write_text("{not json")
    with pytest.raises(DataFileError, match="remove it"):
        run_id_for(folder)


def test_suites_group_their_runs_by_the_suite_name():
    plan = plan_suite(load_suite("demo"))
    for run in plan.runs:
        pairs = dict(zip(run.overrides[::2], run.overrides[1::2]))
        assert pairs["LOG.WANDB_GROUP"] == "demo", run.name
    assert is_harmless("LOG.WANDB_GROUP") and is_harmless("LOG.WANDB")
    assert load_config().LOG.WANDB_GROUP == ""
