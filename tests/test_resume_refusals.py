"""``--resume`` refuses what would not continue the run (a damaged or foreign ``latest``, a config that
changes the maths, other data, no run, a locked folder) in one line with the folder unchanged, and notes
the harmless changes it accepts (``engine/resume.py``, ``engine/resume_check.py``)."""

from __future__ import annotations

import os

import pytest
import torch

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.lock import OutputLock
from tests.helpers import (
    assert_one_line_error,
    bad_checkpoint,
    snapshot,
    tiny_run_overrides,
    train_cli,
    write_teacher_checkpoint,
)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "malicious", "foreign", "damaged"])
def test_bad_latest_is_one_line_and_leaves_the_folder_unchanged(capsys, run_copy, kind, tmp_path):
    prefix, folder = run_copy
    marker = tmp_path / "PAYLOAD_RAN"
    path = os.path.join(folder, "latest")
    if kind == "foreign":  # a readable checkpoint, but not one of the trainer's
        torch.save({"model": {"w": torch.zeros(2)}, "epoch": "two"}, path)
    elif kind == "damaged":  # the trainer's layout with a broken RNG state
        state = torch.load(path, weights_only=True)
        state.pop("rank_states")
        state["rng"] = {"python": [3]}
        torch.save(state, path)
    else:
        bad_checkpoint(path, kind, marker)
    before = snapshot(folder)
    code, _, err = train_cli(capsys, "--resume", *tiny_run_overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert_one_line_error(code, err, os.path.join(folder, "latest"))
    assert snapshot(folder) == before and not marker.exists()


@pytest.mark.parametrize("flag,changes,needles", [
    ("--resume", {"SOLVER.LR": "0.1"}, ["SOLVER.LR 0.05 -> 0.1", "--resume-with-changes"]),
    ("--resume", {"DISTILLER.STUDENT": "resnet14"}, ["DISTILLER.STUDENT 'resnet8' -> 'resnet14'"]),
    ("--resume", {"DISTILLER.TYPE": "KD"}, ["DISTILLER.TYPE 'NONE' -> 'KD'"]),
    ("--resume", {"DATASET.SYNTHETIC.TRAIN_PER_CLASS": "3"}, ["DATASET.SYNTHETIC.TRAIN_PER_CLASS 2 -> 3"]),
    ("--resume-with-changes", {"DISTILLER.STUDENT": "resnet14"}, ["does not fit", "layer1.1"]),
    ("--resume", {"SOLVER.EPOCHS": "1"}, ["below the 2 epochs"]),
    ("", {}, ["already holds a run", "--resume"]),
])
def test_resume_refusals_are_one_line_and_leave_the_folder_unchanged(capsys, run_copy, tmp_path, flag, changes,
                                                                     needles):
    prefix, folder = run_copy
    if changes.get("DISTILLER.TYPE") == "KD":
        changes["DISTILLER.TEACHER_CKPT"] = write_teacher_checkpoint(str(tmp_path / "t.pth"), "resnet8", 10)
    before = snapshot(folder)
    code, _, err = train_cli(capsys, *([flag] if flag else []), *tiny_run_overrides(prefix, **changes))
    assert_one_line_error(code, err, *needles)
    assert snapshot(folder) == before


def test_resume_onto_data_of_another_size_is_refused(capsys, run_copy):
    """DATASET.ROOT may move (a harmless key), but data of another size is another run."""
    prefix, folder = run_copy
    latest = torch.load(os.path.join(folder, "latest"), weights_only=True)
    latest["num_data"] = 50000
    torch.save(latest, os.path.join(folder, "latest"))
    before = snapshot(folder)
    code, _, err = train_cli(capsys, "--resume", *tiny_run_overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert_one_line_error(code, err, "trained on 50000 images, the data now has 20")
    assert snapshot(folder) == before


def test_resume_without_a_run_and_a_locked_folder_are_one_line(capsys, run_copy, tmp_path):
    code, _, err = train_cli(capsys, "--resume", *tiny_run_overrides(tmp_path / "empty"))
    assert_one_line_error(code, err, "no checkpoint")
    assert snapshot(str(tmp_path / "empty" / "distill" / "run")) is None
    prefix, folder = run_copy
    before = snapshot(folder)
    with OutputLock(folder):  # another writer (here: this process, through its own lock)
        code, _, err = train_cli(capsys, "--resume", *tiny_run_overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert_one_line_error(code, err, f"pid {os.getpid()}", "another run")
    assert snapshot(folder) == before
    code, _, _ = train_cli(capsys, "--resume", *tiny_run_overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    assert code == 0


def test_harmless_changes_resume_and_are_noted(capsys, run_copy):
    prefix, folder = run_copy
    code, out, _ = train_cli(capsys, "--resume",
                       *tiny_run_overrides(prefix, **{"SOLVER.EPOCHS": "3", "LOG.TENSORBOARD_FREQ": "7"}))
    assert code == 0 and "LOG.TENSORBOARD_FREQ 500 -> 7" in out  # LOG.PREFIX changed too: the folder moved
    note = [line for line in open(os.path.join(folder, "worklog.txt")) if line.startswith("resume after epoch 2")]
    assert len(note) == 1 and "LOG.TENSORBOARD_FREQ 500 -> 7" in note[0] and "SOLVER.EPOCHS 2 -> 3" in note[0]
    assert "EPOCHS: 3" in open(os.path.join(folder, "config.yaml")).read()  # the next resume compares with it


def test_resume_check_sorts_keys_into_harmless_and_maths():
    from mdistiller_ddkd.engine.cfg import build_default_config
    from mdistiller_ddkd.engine.resume_check import config_changes, is_harmless, split_changes

    assert is_harmless("LOG.DIAGNOSTICS") and is_harmless("DATASET.NUM_WORKERS") and is_harmless("SOLVER.EPOCHS")
    assert not is_harmless("SOLVER.LR") and not is_harmless("EXPERIMENT.SEED") and not is_harmless("KD.TEMPERATURE")
    import yaml

    saved = load_config(None, ["SOLVER.LR", "0.1", "DATASET.NUM_WORKERS", "4"])
    saved_dict = yaml.safe_load(saved.dump())  # what config.yaml holds
    del saved_dict["LOG"]["WANDB"]  # a key the run's version did not have yet: its default is no change
    maths, harmless = split_changes(config_changes(saved_dict, build_default_config()))
    assert [str(c) for c in maths] == ["SOLVER.LR 0.1 -> 0.05"]
    assert [str(c) for c in harmless] == ["DATASET.NUM_WORKERS 4 -> 2"]
