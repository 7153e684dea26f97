"""The README's first command: the offline demo suite, end to end. Its duration is printed, not asserted
(a loaded CI machine must not fail a correct build); docs/benchmarks.md has the measured time."""

from __future__ import annotations

import importlib.util
import json
import os
import time

import pytest

from tests.helpers import REPO_ROOT, run_cli

#: a hang guard only (the demo takes about 4 minutes on 2 quiet cores, 6 on one thread)
TIMEOUT_S = float(os.environ.get("DDKD_DEMO_TIMEOUT_S", "2400"))


@pytest.mark.slow
def test_demo_suite_runs_offline_and_prints_its_table(tmp_path):
    start = time.time()
    result = run_cli([os.path.join(REPO_ROOT, "tools", "suite.py"), "demo"], cwd=str(tmp_path),
                     timeout=TIMEOUT_S,
                     # one thread: the test runner keeps the other core busy with other tests
                     env_extra={"MDISTILLER_DDKD_TEACHERS_URL": "file:///nonexistent", "OMP_NUM_THREADS": "1"})
    elapsed = time.time() - start
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    assert out.count("] started") == 5 and out.count("] finished") == 5 and "] epoch" in out
    root = tmp_path / "output" / "suites" / "demo"
    results = {}
    for name in os.listdir(root):
        if name != "plots":  # the demo's plots (below), not a run
            with open(root / name / "results.json") as f:
                results[name] = json.load(f)
    if importlib.util.find_spec("matplotlib") is not None:  # the [plot] extra (part of [test])
        assert "accuracy_resnet20_resnet8.png" in os.listdir(root / "plots")
    assert all(r["finished"] and r["dataset"] == "synthetic" for r in results.values())
    teacher = results["teacher-resnet20-s0"]["best_acc"]
    student = results["none-resnet8-s0"]["best_acc"]
    assert teacher > 80.0, f"teacher reached only {teacher:.1f}%"
    assert teacher > student + 5.0, f"teacher {teacher:.1f}% vs student alone {student:.1f}%"
    for method in ("kd", "dkd", "ddkd"):
        assert results[f"{method}-res20_res8-s0"]["best_acc"] > 20.0  # distillation trains (chance: 10%)
    assert "| resnet20 → resnet8 |" in out and "| Teacher | Student | KD | DKD | DDKD |" in out
    print(f"the demo suite took {elapsed:.0f} s")
