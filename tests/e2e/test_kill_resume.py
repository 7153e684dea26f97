"""Kill a training process at the worst moments (SIGKILL mid-epoch, during a checkpoint write, between
``latest`` and results.json; SIGTERM mid-epoch), resume each time (also after a clean stop, with more
epochs), and end bit-identical to an uninterrupted run — with DataLoader workers (``NUM_WORKERS 2``,
persistent) and without. The moments are exact: ``fault_plugin.py`` kills from inside the process.

Tiny synthetic data (80 train images, 5 steps per epoch), resnet8 <- resnet8 KD, 3 epochs on CPU.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from tests.helpers import (
    FAULT_PLUGIN,
    REPO_ROOT,
    TRAIN,
    run_cli,
    run_folder,
    synthetic_overrides,
    write_teacher_checkpoint,
)


def train(prefix, teacher, workers, *flags, fault="", epochs=3, **extra):
    return run_cli([TRAIN, *FAULT_PLUGIN, *flags, *synthetic_overrides(prefix, teacher, workers, epochs, **extra)],
                   cwd=REPO_ROOT,
                   env_extra={"DDKD_FAULT": fault}, timeout=300)


def load(prefix, name):
    return torch.load(os.path.join(run_folder(prefix), name), weights_only=True)


def temp_files(prefix):
    return [n for n in os.listdir(run_folder(prefix)) if n.endswith(".tmp")]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return write_teacher_checkpoint(str(tmp_path_factory.mktemp("teacher") / "t.pth"), "resnet8", num_classes=10)


@pytest.fixture(scope="module")
def reference(teacher, tmp_path_factory):
    """An uninterrupted run without workers: its weights and results."""
    prefix = str(tmp_path_factory.mktemp("reference"))
    proc = train(prefix, teacher, 0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load(prefix, "latest")["model"], json.load(open(os.path.join(run_folder(prefix), "results.json")))


def expect(proc, code):
    assert proc.returncode == code, f"exit {proc.returncode}, expected {code}:\n{proc.stderr[-3000:]}"


def test_killed_four_times_then_resumed_is_bit_identical(teacher, reference, tmp_path):
    prefix = str(tmp_path)
    # 0. a clean run of 1 epoch with persistent workers, later extended to 3 (allowed, noted in the worklog)
    expect(train(prefix, teacher, 2, epochs=1), 0)
    # 1. resume; SIGKILL in epoch 2 after step 2: latest stays at epoch 1, the lock file is left behind
    expect(train(prefix, teacher, 2, "--resume", fault="signal:2:2:KILL"), -signal.SIGKILL)
    assert load(prefix, "latest")["epoch"] == 1 and os.path.exists(os.path.join(run_folder(prefix), ".lock"))
    # 2. resume (the dead holder's lock is taken over); SIGKILL while latest of epoch 2 is being written
    expect(train(prefix, teacher, 2, "--resume", fault="in-save:latest:2"), -signal.SIGKILL)
    assert load(prefix, "latest")["epoch"] == 1 and any(n.startswith(".latest.") for n in temp_files(prefix))
    # 3. resume without workers; SIGTERM in epoch 3 after step 3: a mid-epoch checkpoint, exit 143, one line
    proc = train(prefix, teacher, 0, "--resume", fault="signal:3:3:TERM")
    expect(proc, 143)
    assert proc.stderr.strip().count("\n") == 0 and "stopped by SIGTERM in epoch 3 after step 3" in proc.stderr
    latest = load(prefix, "latest")
    assert latest["epoch"] == 2 and latest["partial"] == {"epoch": 3, "step": 3} and temp_files(prefix) == []
    # 4. resume (workers on); SIGKILL right after latest of epoch 3, before results.json and the worklog
    expect(train(prefix, teacher, 2, "--resume", fault="after-save:latest:3"), -signal.SIGKILL)
    results = json.load(open(os.path.join(run_folder(prefix), "results.json")))
    assert load(prefix, "latest")["epoch"] == 3 and (results["epoch"], results["finished"]) == (2, False)
    # 5. resume: nothing left to train, the folder is completed from latest
    expect(train(prefix, teacher, 2, "--resume"), 0)

    weights, ref_results = reference
    assert_same_weights(load(prefix, "latest")["model"], weights)
    student = load(prefix, "student_latest")
    assert student["epoch"] == 3
    student_weights = {k[len("student."):]: v for k, v in weights.items() if k.startswith("student.")}
    assert_same_weights(student["model"], student_weights)
    results = json.load(open(os.path.join(run_folder(prefix), "results.json")))
    assert results["finished"] and results["epoch"] == 3
    for ours, ref in zip(results["history"], ref_results["history"]):  # the resumed epoch's means too
        assert {k: v for k, v in ours.items() if k != "seconds"} == {k: v for k, v in ref.items() if k != "seconds"}
    log = open(os.path.join(run_folder(prefix), "worklog.txt")).read()
    assert [log.count(f"epoch: {e}\t") for e in (1, 2, 3)] == [1, 1, 1]
    assert "changed SOLVER.EPOCHS 1 -> 3" in log and "rebuilt student_latest" in log and ".latest." in log
    assert load(prefix, "epoch_2")["epoch"] == 2
    assert load(prefix, "student_best")["epoch"] == load(prefix, "best")["epoch"]
    assert temp_files(prefix) == [] and not os.path.exists(os.path.join(run_folder(prefix), ".lock"))


def test_ddp_stopped_mid_epoch_resumes_bit_identically(teacher, tmp_path):
    """torchrun, 2 CPU processes: SIGTERM on both ranks inside epoch 2 (they agree on the step), every
    rank's RNG state and running sums saved in the mid-epoch latest, then --resume."""
    def torchrun(prefix, *flags, fault=""):
        args = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", TRAIN, *FAULT_PLUGIN, *flags,
                *synthetic_overrides(prefix, teacher, 0, epochs=2, **{"DISTILLER.TYPE": "NONE"})]
        return run_cli(args, cwd=REPO_ROOT, env_extra={"DDKD_FAULT": fault}, timeout=300)

    reference, stopped = str(tmp_path / "reference"), str(tmp_path / "stopped")
    expect(torchrun(reference), 0)
    proc = torchrun(stopped, fault="signal:2:1:TERM")
    assert proc.returncode != 0 and "stopped by SIGTERM in epoch 2 after step 1" in proc.stderr
    latest = load(stopped, "latest")
    assert latest["partial"] == {"epoch": 2, "step": 1} and len(latest["rank_states"]) == 2
    expect(torchrun(stopped, "--resume"), 0)
    assert_same_weights(load(stopped, "latest")["model"], load(reference, "latest")["model"])
    ours, ref = (json.load(open(os.path.join(run_folder(p), "results.json")))["history"] for p in (stopped, reference))
    assert [r["train_loss"] for r in ours] == [r["train_loss"] for r in ref]
