"""The output folder (``engine/run_folder.py``): mdistiller's files, ``latest`` as each epoch's commit point,
the files derived from it in mdistiller's order, records written once per epoch, and ``repair`` rebuilding
whatever a crash left behind ``latest``."""

from __future__ import annotations

import json
import os

import torch

from mdistiller_ddkd.engine.run_folder import (
    BEST,
    LATEST,
    RESULTS,
    STUDENT_BEST,
    STUDENT_LATEST,
    WORKLOG,
    RunFolder,
    student_checkpoint,
)


def _state(epoch: int, history, partial=None):
    state = {"epoch": epoch, "model": {"student.w": torch.full((2,), float(epoch)), "teacher.w": torch.zeros(1)},
             "optimizer": {}, "best_acc": max(r["test_acc"] for r in history), "history": json.dumps(history)}
    if partial:
        state["partial"] = partial
    return state


def _results(history, epochs=4):
    return {"history": history, "epochs": epochs, "best_acc": max(r["test_acc"] for r in history)}


def _epoch_of(folder: RunFolder, name: str):
    return torch.load(folder.file(name), weights_only=True)["epoch"]


def test_an_epoch_commits_latest_then_its_derived_files(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.claim()
    history = [{"epoch": 1, "test_acc": 10.0}, {"epoch": 2, "test_acc": 5.0}]
    for epoch, is_best in ((1, True), (2, False)):
        state = _state(epoch, history[:epoch])
        folder.commit_latest(state)
        folder.write_derived(state, history[epoch - 1]["test_acc"], is_best, keep_copy=epoch == 2)
        folder.write_records(_results(history[:epoch]))
    names = set(os.listdir(folder.path))
    assert {LATEST, BEST, STUDENT_BEST, STUDENT_LATEST, "epoch_2", "student_2", RESULTS, WORKLOG} <= names
    assert "epoch_1" not in names and "student_1" not in names
    assert (_epoch_of(folder, LATEST), _epoch_of(folder, BEST), _epoch_of(folder, STUDENT_BEST)) == (2, 1, 1)
    student = torch.load(folder.file(STUDENT_LATEST), weights_only=True)
    assert list(student["model"]) == ["w"] and student["test_acc"] == 5.0  # the student's keys, unprefixed
    log = open(folder.file(WORKLOG)).read()
    assert log.count("epoch: 1\t") == 1 and log.count("epoch: 2\t") == 1
    folder.release()
    assert not os.path.exists(os.path.join(folder.path, ".lock"))


def test_records_are_written_once_per_epoch_and_the_best_line_after_the_last(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    history = [{"epoch": e, "test_acc": float(e)} for e in (1, 2)]
    folder.write_records(_results(history[:1], epochs=2))
    folder.write_records(_results(history[:1], epochs=2))  # again: nothing added
    folder.write_records(_results(history, epochs=2))
    log = open(folder.file(WORKLOG)).read()
    assert [log.count(f"epoch: {e}\t") for e in (1, 2)] == [1, 1] and log.rstrip().endswith("best_acc\t2.0000")
    assert json.load(open(folder.file(RESULTS)))["history"] == history


def test_repair_rebuilds_what_lags_behind_latest_and_removes_stale_temporaries(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    folder.claim()
    history = [{"epoch": 1, "test_acc": 3.0}, {"epoch": 2, "test_acc": 3.0}]  # a tie: best is epoch 2
    first = _state(1, history[:1])
    folder.commit_latest(first)
    folder.write_derived(first, 3.0, True, keep_copy=False)
    second = _state(2, history)
    folder.commit_latest(second)  # killed here: nothing derived from epoch 2 was written
    open(os.path.join(folder.path, ".latest.abc123.tmp"), "wb").write(b"half")
    done = folder.repair(second, keep_copy=lambda epoch: epoch % 2 == 0)
    assert sorted(done) == sorted(["removed .latest.abc123.tmp", "rebuilt student_latest", "rebuilt epoch_2",
                                   "rebuilt student_2", "rebuilt best", "rebuilt student_best"])
    for name in (STUDENT_LATEST, "epoch_2", "student_2", BEST, STUDENT_BEST):
        assert _epoch_of(folder, name) == 2, name
    assert folder.repair(second, keep_copy=lambda epoch: epoch % 2 == 0) == []  # nothing left to do
    folder.release()


def test_a_mid_epoch_latest_leaves_the_last_epochs_files_alone(tmp_path):
    folder = RunFolder(str(tmp_path / "run"))
    history = [{"epoch": 1, "test_acc": 3.0}]
    state = _state(1, history)
    folder.commit_latest(state)
    folder.write_derived(state, 3.0, True, keep_copy=False)
    folder.save_partial(_state(1, history, partial={"epoch": 2, "step": 3}))
    assert folder.repair(_state(1, history, partial={"epoch": 2, "step": 3}), keep_copy=lambda e: True) == []
    assert torch.load(folder.file(LATEST), weights_only=True)["partial"] == {"epoch": 2, "step": 3}


def test_student_checkpoint_strips_the_prefix_and_keeps_epoch_and_accuracy():
    state = {"epoch": 7, "model": {"student.a.b": torch.ones(1), "teacher.x": torch.ones(1), "noise.y": torch.ones(1)}}
    student = student_checkpoint(state, 12.5)
    assert list(student["model"]) == ["a.b"] and (student["epoch"], student["test_acc"]) == (7, 12.5)
