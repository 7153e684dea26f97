"""The README's first command: the offline demo suite, end to end — one teacher, then the student alone and
with KD, DKD and DDKD on 3 seeds, and the table with mean ± std and ranks that show ties. Its duration is
printed, not asserted (a loaded CI machine must not fail a correct build); docs/benchmarks.md has the
measured time."""

from __future__ import annotations

import importlib.util
import json
import os
import time

import pytest

from dev import docgen
from dev.docgen import late_change
from mdistiller_ddkd.suite.result_tables import build_tables, load_results
from mdistiller_ddkd.suite.table_formats import RANK_LEGEND, cell_text
from tests.helpers import DEMO_STUDENT_LATE_CHANGE, DEMO_TEACHER_LATE_CHANGE, REPO_ROOT, run_cli

#: a hang guard only (the demo takes a few minutes on 2 quiet cores)
TIMEOUT_S = float(os.environ.get("DDKD_DEMO_TIMEOUT_S", "2400"))


@pytest.mark.slow
def test_demo_suite_runs_offline_and_prints_its_table(tmp_path):
    start = time.time()
    result = run_cli([os.path.join(REPO_ROOT, "tools", "suite.py"), "demo"], cwd=str(tmp_path),
                     timeout=TIMEOUT_S,
                     # one thread per run (the demo's two runs at a time): the runner keeps the cores busy too
                     env_extra={"MDISTILLER_DDKD_TEACHERS_URL": "file:///nonexistent", "OMP_NUM_THREADS": "1"})
    elapsed = time.time() - start
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    out = result.stdout
    runs = 1 + 4 * 3  # the teacher once, then NONE, KD, DKD, DDKD x 3 seeds
    assert out.count("] started") == runs and out.count("] finished") == runs and "] epoch" in out
    root = tmp_path / "output" / "suites" / "demo"
    results = {}
    for name in os.listdir(root):
        if os.path.isdir(root / name) and name != "plots" and not name.startswith("."):  # runs only (not .suite/)
            with open(root / name / "results.json") as f:
                results[name] = json.load(f)
    assert len(results) == runs and all(r["finished"] and r["dataset"] == "synthetic" for r in results.values())
    with open(root / "suite.json") as f:
        manifest = json.load(f)
    assert manifest["jobs"] == 2 and {r["threads"] for r in manifest["runs"].values()} == {1}
    if importlib.util.find_spec("matplotlib") is not None:  # the [plot] extra (part of [test])
        assert "accuracy_resnet20_resnet8.png" in os.listdir(root / "plots")
    teacher = [h["test_acc"] for h in results["teacher-resnet20-s0"]["history"]]
    assert late_change(teacher) <= DEMO_TEACHER_LATE_CHANGE, f"the teacher is not on its plateau: {teacher}"
    for name, run in results.items():
        curve = [h["test_acc"] for h in run["history"]]
        assert late_change(curve) < DEMO_STUDENT_LATE_CHANGE, f"{name} jumps late: {curve}"
        if run["method"] != "NONE":
            assert run["best_acc"] > 20.0, name  # distillation trains (chance: 10%)
    # the table: one teacher run (no ±), 3 seeds per student column, each ranked, the legend of ties
    table = next(line for line in out.splitlines() if line.startswith("| resnet20 → resnet8 |"))
    assert "| Teacher | Student | KD | DKD | DDKD |" in out and RANK_LEGEND in out
    cells = [c.strip() for c in table.strip("|").split("|")][1:]
    assert cells[0].endswith("(n=1)") and "±" not in cells[0]
    assert all("(n=3), rank " in cell for cell in cells[1:]), cells
    _assert_the_published_table_is_this_code_s(str(root))
    print(f"the demo suite took {elapsed:.0f} s")


def _assert_the_published_table_is_this_code_s(root: str) -> None:
    """The committed one-thread demo results (docs/results/, shown in docs/benchmarks.md) are what this code
    computes, cell by cell: a change to what a method computes regenerates them in the same change."""
    published = docgen.demo_results(os.path.join(REPO_ROOT, docgen.RESULTS_DIR))["1 thread"]
    expected = docgen.suite_table(published)
    (table,) = build_tables(load_results([root]), pairs=[(r.teacher, r.student) for r in expected.rows],
                            dataset=expected.dataset, methods=expected.columns[2:])
    differing = [f"{row.teacher} → {row.student} / {column}: measured {cell_text(row.cells.get(column))!r}, "
                 f"published {cell_text(published_row.cells.get(column))!r}"
                 for row, published_row in zip(table.rows, expected.rows) for column in expected.columns
                 if cell_text(row.cells.get(column)) != cell_text(published_row.cells.get(column))]
    assert table.columns == expected.columns and not differing, (
        "the demo's numbers differ from docs/results/demo-1thread.json — regenerate them (docs/benchmarks.md, "
        "'The offline demo'): " + "; ".join(differing))
