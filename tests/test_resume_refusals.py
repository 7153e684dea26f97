"""``--resume`` refuses what would not continue the run (a damaged or foreign ``latest``, a config that
changes the maths, other data, no run, a locked folder) in one line with the folder unchanged, and notes
the harmless changes it accepts (``engine/resume.py``)."""

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
    from mdistiller_ddkd.engine.resume import config_changes, is_harmless, split_changes

    assert is_harmless("LOG.DIAGNOSTICS") and is_harmless("DATASET.NUM_WORKERS") and is_harmless("SOLVER.EPOCHS")
    assert not is_harmless("SOLVER.LR") and not is_harmless("EXPERIMENT.SEED") and not is_harmless("KD.TEMPERATURE")
    import yaml

    saved = load_config(None, ["SOLVER.LR", "0.1", "DATASET.NUM_WORKERS", "4"])
    saved_dict = yaml.safe_load(saved.dump())  # what config.yaml holds
    del saved_dict["LOG"]["WANDB"]  # a key the run's version did not have yet: its default is no change
    maths, harmless = split_changes(config_changes(saved_dict, build_default_config()))
    assert [str(c) for c in maths] == ["SOLVER.LR 0.1 -> 0.05"]
    assert [str(c) for c in harmless] == ["DATASET.NUM_WORKERS 4 -> 2"]


def test_read_latest_returns_what_it_restores_and_changes_nothing(run_copy):
    """``read_latest`` is a pure read: the folder and this process's RNG are untouched; the progress, this rank's
    RNG state (or, under another world size, the seed replacing it) come from ``latest`` and results.json."""
    import json

    from mdistiller_ddkd.engine.build import build_distiller
    from mdistiller_ddkd.engine.distributed import Runtime
    from mdistiller_ddkd.engine.resume import read_latest
    from mdistiller_ddkd.engine.run_folder import RunFolder

    prefix, folder = run_copy
    cfg = load_config(None, tiny_run_overrides(prefix, **{"SOLVER.EPOCHS": "3"}))
    latest = torch.load(os.path.join(folder, "latest"), weights_only=True)
    results = json.load(open(os.path.join(folder, "results.json")))
    distiller, _ = build_distiller(cfg, latest["num_data"], latest["model"]["student.fc.weight"].shape[0])
    before, rng_before = snapshot(folder), torch.get_rng_state()
    restored = read_latest(RunFolder(folder), cfg, latest["num_data"], distiller, False, Runtime(torch.device("cpu")))
    assert snapshot(folder) == before and torch.equal(torch.get_rng_state(), rng_before)
    progress = restored.progress
    assert (progress.start_epoch, progress.start_step, progress.committed_epoch) == (3, 0, 2)
    assert (progress.best_acc, progress.history) == (results["best_acc"], results["history"])
    assert torch.equal(restored.rng["torch"], latest["rank_states"][0]["rng"]["torch"])
    assert (restored.reseed, restored.changes, restored.where()) == (None, [], "after epoch 2")
    two = read_latest(RunFolder(folder), cfg, latest["num_data"], distiller, False,
                      Runtime(torch.device("cpu"), rank=1, world_size=2))
    assert (two.rng, two.reseed, two.changes) == (None, cfg.EXPERIMENT.SEED + 1 + 1000 * 2,
                                                  ["world size 1 -> 2 (not exact)"])
