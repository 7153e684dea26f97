"""A sweep suite end to end on the synthetic data: 2 learning rates x 2 seeds x 2 methods (KD, DKD) through
``ddkd-suite``, stopped mid-run by Ctrl-C and resumed, then tabulated (best and last epoch, paired against one
point of the sweep) and plotted against the swept value."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers import FAULT_PLUGIN, REPO_ROOT, run_cli, write_teacher_checkpoint

RUNS = [f"{method}-r8_r8-SOLVER.LR={lr}-s{seed}" for method in ("kd", "dkd") for lr in ("0.01", "0.05")
        for seed in (0, 1)]


@pytest.fixture
def sweep_suite(tmp_path):
    teacher = write_teacher_checkpoint(str(tmp_path / "teacher.pth"), "resnet8", num_classes=10)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "DATASET": {"TYPE": "synthetic", "NUM_WORKERS": 0, "TEST": {"BATCH_SIZE": 40},
                    "SYNTHETIC": {"TRAIN_PER_CLASS": 8, "TEST_PER_CLASS": 4}},
        "SOLVER": {"EPOCHS": 3, "BATCH_SIZE": 16, "DEVICE": "cpu", "LR_DECAY_STAGES": [2]},
        "LOG": {"SAVE_CHECKPOINT_FREQ": 0},
    }))
    spec = tmp_path / "lr_sweep.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "lr_sweep", "dataset": "synthetic", "methods": ["KD", "DKD"],
        "pairs": [{"name": "r8_r8", "teacher": "resnet8", "student": "resnet8"}], "seeds": [0, 1],
        "config": str(base), "output": str(tmp_path / "out"), "sweep": {"SOLVER.LR": [0.01, 0.05]},
        "overrides": {"DISTILLER.TEACHER_CKPT": teacher, "DKD.WARMUP": 1},
    }))
    return str(spec), tmp_path / "out" / "lr_sweep"


def _results(root, run):
    with open(root / run / "results.json") as f:
        return json.load(f)


def _interrupt_the_first_run(spec, root) -> int:
    """Start the suite with every run pausing in epoch 2; SIGINT it once the first run has saved epoch 1.
    Returns the epoch the interrupted run had finished."""
    first = root / RUNS[0]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, OMP_NUM_THREADS="1", DDKD_FAULT="pause:2:1")
    process = subprocess.Popen([sys.executable, "tools/suite.py", spec, "--jobs", "1", "--no-report", *FAULT_PLUGIN],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240

    def saved() -> bool:
        return (first / "latest").exists() and (first / "results.json").exists()

    while not saved() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert saved() and process.poll() is None, "no checkpoint appeared while the first run was going"
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0 and "interrupted" in out, out
    interrupted = _results(root, RUNS[0])
    assert not interrupted["finished"] and interrupted["epoch"] == 1
    assert not any((root / run).exists() for run in RUNS[1:])  # one run at a time: the others never started
    return interrupted["epoch"]


def test_a_sweep_suite_runs_resumes_tabulates_and_plots(sweep_suite, tmp_path):
    pytest.importorskip("matplotlib")
    spec, root = sweep_suite
    epoch = _interrupt_the_first_run(spec, root)
    resumed = run_cli(["tools/suite.py", spec, "--jobs", "2", *FAULT_PLUGIN], cwd=REPO_ROOT, timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming after epoch {epoch}" in resumed.stdout and resumed.stdout.count("] finished") == len(RUNS)
    # the table at the end: one column per method and value, no empty column of the unswept method
    assert ("| Teacher → Student | Teacher | Student | KD SOLVER.LR=0.01 | KD SOLVER.LR=0.05 | DKD SOLVER.LR=0.01 | "
            "DKD SOLVER.LR=0.05 |") in resumed.stdout
    for run in RUNS:
        results = _results(root, run)
        assert results["finished"] and [h["epoch"] for h in results["history"]] == [1, 2, 3]
    with open(root / RUNS[-1] / "config.yaml") as f:
        assert yaml.safe_load(f)["SOLVER"]["LR"] == 0.05  # the run's point reached its config
    status = run_cli(["tools/suite.py", "status", spec], cwd=REPO_ROOT, timeout=120)
    assert status.returncode == 0 and status.stdout.count("] done ") == len(RUNS), status.stdout

    plots = tmp_path / "plots"
    table = run_cli(["tools/table.py", spec, "--metric", "both", "--vs", "KD SOLVER.LR=0.01", "--format", "json",
                     "--plot", str(plots)], cwd=REPO_ROOT, timeout=120)
    assert table.returncode == 0, table.stdout + table.stderr
    text, wrote = table.stdout.split("[mdistiller_ddkd] wrote ")
    data = json.loads(text)[0]
    assert data["columns"] == ["Teacher", "Student", "KD SOLVER.LR=0.01", "KD SOLVER.LR=0.05", "DKD SOLVER.LR=0.01",
                               "DKD SOLVER.LR=0.05"]
    cells = data["rows"][0]["cells"]
    for column in data["columns"][2:]:
        method, lr = column.split(" SOLVER.LR=")
        runs = [_results(root, f"{method.lower()}-r8_r8-SOLVER.LR={lr}-s{seed}") for seed in (0, 1)]
        assert cells[column]["best"]["values"] == [r["best_acc"] for r in runs]
        assert cells[column]["last"]["values"] == [r["last_acc"] for r in runs]
    best = next(p for p in data["paired"] if p["metric"] == "best")
    assert [c["column"] for c in best["rows"][0]["comparisons"]] == data["columns"][3:]
    assert all(c["n"] == 2 and c["paired"] for c in best["rows"][0]["comparisons"])
    assert wrote.startswith("3 plot(s)")  # accuracy per epoch, ours (no paper values here), the sweep
    assert (plots / "sweep_resnet8_resnet8_SOLVER.LR.png").read_bytes()[:4] == b"\x89PNG"
