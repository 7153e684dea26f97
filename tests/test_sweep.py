"""Sweeps: a suite file's ``sweep`` / ``method_sweep`` grid becomes one run per point and seed, named with its
values (read back by the tables), checked through the config before anything runs; ``--dry-run --slurm`` writes
one job per run, ``status`` lists them; the table shows a sweep as columns in value order, and ``--plot`` draws
accuracy against the value."""

from __future__ import annotations

import os

import pytest
import yaml

from mdistiller_ddkd.cli.suite import main as suite_main
from mdistiller_ddkd.cli.table import main as table_main
from mdistiller_ddkd.suite.plan import plan_suite
from mdistiller_ddkd.suite.result_tables import build_tables, load_results
from mdistiller_ddkd.suite.spec import NAMED_SUITES, load_suite
from mdistiller_ddkd.suite.sweep import grid, name_part, sweep_of_run_name
from mdistiller_ddkd.suite.sweep_figures import log_axis, sweep_lines
from tests.helpers import assert_one_line_error, call_cli
from tests.test_table import write_run


def _suite_file(tmp_path, **fields) -> str:
    data = {"name": "sw", "base": "demo", "methods": ["KD", "DKD"], "seeds": [0, 1], "output": str(tmp_path / "out"),
            **fields}
    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _value(run, key):
    """The value the run's overrides give ``key`` (the last one given wins)."""
    return run.overrides[max(i for i, item in enumerate(run.overrides) if item == key) + 1]


def test_the_grid_is_one_run_per_point_and_seed_named_with_its_values(tmp_path):
    spec = load_suite(_suite_file(tmp_path, sweep={"SOLVER.LR": [0.01, 0.02]},
                                  method_sweep={"DKD": {"DKD.BETA": [1, 2], "SOLVER.LR": [0.05]}}))
    plan = plan_suite(spec)
    names = [r.name for r in plan.runs]
    assert names == ["teacher-resnet20-s0",  # the teacher the suite trains is not swept
                     "kd-res20_res8-SOLVER.LR=0.01-s0", "kd-res20_res8-SOLVER.LR=0.01-s1",
                     "kd-res20_res8-SOLVER.LR=0.02-s0", "kd-res20_res8-SOLVER.LR=0.02-s1",
                     # DKD's own SOLVER.LR replaces the global one; its grid is LR x BETA
                     "dkd-res20_res8-SOLVER.LR=0.05-DKD.BETA=1.0-s0", "dkd-res20_res8-SOLVER.LR=0.05-DKD.BETA=1.0-s1",
                     "dkd-res20_res8-SOLVER.LR=0.05-DKD.BETA=2.0-s0", "dkd-res20_res8-SOLVER.LR=0.05-DKD.BETA=2.0-s1"]
    teacher, *runs = plan.runs
    assert "SOLVER.LR" not in teacher.overrides and teacher.point == {}
    for run in runs:
        assert sweep_of_run_name(run.name) == run.point
        assert all(_value(run, key) == value for key, value in run.point.items())  # an int for a float key: 1.0
        assert os.path.basename(run.output_dir) == run.name and "seed" in run.label()
    assert runs[4].label() == "DKD resnet20->resnet8 SOLVER.LR=0.05 DKD.BETA=1.0 seed 0"


@pytest.mark.parametrize("point", [{"DKD.BETA": "1e-05"}, {"SOLVER.LR": "-1"}, {"A.B": "x-y", "C_D.E2": "3"},
                                   {"EXPERIMENT.TAG": "s-s1"}])
def test_a_run_name_gives_its_point_back(point):
    for head in ("dkd-res56_res20", "none-resnet8", "kd-my-pair"):
        assert sweep_of_run_name(f"{head}{name_part(point)}-s12") == point
    assert sweep_of_run_name("dkd-res56_res20-s0") == {} and grid({}) == [{}]


@pytest.mark.parametrize("fields,needles", [
    ({"sweep": {"DKD.BOGUS": [1, 2]}}, ("DKD.BOGUS", "check the spelling")),
    ({"method_sweep": {"DKD": {"DKD.BETA": ["big"]}}}, ("DKD.BETA", "big")),
    ({"sweep": {"EXPERIMENT.TAG": ["a/b"]}}, ("EXPERIMENT.TAG", "may hold only letters")),
    ({"sweep": {"DKD.BETA": 2}}, ("needs a list of values",)),
    ({"sweep": {"DKD.BETA": [[1, 2]]}}, ("a number, a word or a boolean",)),
    ({"sweep": {"DKD.BETA": [2, 2.0]}}, ("lists 2.0 more than once",)),
    ({"sweep": {"beta": [2]}}, ("is not a config key",)),
    ({"method_sweep": [1]}, ("method_sweep must be a mapping",)),
])
def test_bad_sweeps_are_one_line_before_anything_runs(tmp_path, capsys, fields, needles):
    code, _, err = call_cli(capsys, suite_main, _suite_file(tmp_path, **fields), "--dry-run")
    assert_one_line_error(code, err, *needles)
    assert not os.path.exists(tmp_path / "out")


def test_dry_run_slurm_writes_one_job_per_sweep_run_and_status_lists_them(tmp_path, capsys):
    path = _suite_file(tmp_path, method_sweep={"KD": {"KD.TEMPERATURE": [2, 8]}})
    plan = plan_suite(load_suite(path))
    code, out, _ = call_cli(capsys, suite_main, path, "--dry-run", "--slurm", "--cpus-per-run", "1")
    assert code == 0 and out.count("#!/bin/bash") == len(plan.runs) == 1 + 2 * 2 + 2
    for run in plan.runs:
        assert out.count(f"# ---- {run.name}: ") == 1
    assert "KD.TEMPERATURE 8" in out
    code, out, _ = call_cli(capsys, suite_main, "status", path)
    assert code == 0 and out.count("] not started ") == len(plan.runs)
    assert "KD resnet20->resnet8 KD.TEMPERATURE=8 seed 1" in out


def test_the_shipped_sweep_suites_are_named_suites(capsys):
    for name, method, key, runs in (("demo_dkd_beta", "DKD", "DKD.BETA", 1 + 3 + 4 * 3),
                                    ("demo_kd_temperature", "KD", "KD.TEMPERATURE", 1 + 3 + 4 * 3),
                                    ("cifar100_ddkd_beta_diff_weight", "DDKD", "DDKD.DIFF_WEIGHT", 3 + 3 + 9 * 3)):
        assert name in NAMED_SUITES
        plan = plan_suite(load_suite(name))
        assert len(plan.runs) == runs and not plan.problems()
        assert any(key in r.point for r in plan.runs if r.method == method)
    spec = load_suite("cifar100_ddkd_beta_diff_weight")
    assert spec.method_sweep["DDKD"] == {"DDKD.DKD.BETA": ["2.0", "4.0", "8.0"],
                                         "DDKD.DIFF_WEIGHT": ["0.1", "1.0", "10.0"]}


@pytest.fixture
def sweep_runs(tmp_path):
    root = tmp_path / "runs"
    for value, accuracies in (("10.0", (74.0, 76.0)), ("2.0", (72.0, 73.0)), ("0.5", (70.0, 70.0))):
        for seed, acc in enumerate(accuracies):
            write_run(root, f"dkd-res56_res20-DKD.BETA={value}-s{seed}", "DKD", "resnet56", "resnet20", seed, acc,
                      acc - 1)
    write_run(root, "kd-res56_res20-s0", "KD", "resnet56", "resnet20", 0, 71.0, 70.0)
    write_run(root, "kd-res56_res20-s1", "KD", "resnet56", "resnet20", 1, 71.5, 70.0)
    return root


def test_a_sweep_is_columns_in_value_order_and_compares_paired(sweep_runs, capsys):
    table = next(t for t in build_tables(load_results([str(sweep_runs)])) if t.dataset == "cifar100")
    assert table.columns == ["Teacher", "Student", "KD", "DKD DKD.BETA=0.5", "DKD DKD.BETA=2.0", "DKD DKD.BETA=10.0"]
    cell = table.rows[0].cells["DKD DKD.BETA=10.0"]
    assert cell.values == [74.0, 76.0] and cell.seeds == [0, 1] and cell.paper is None
    assert table.rows[0].cells["KD"].paper == pytest.approx(70.66)
    code, out, _ = call_cli(capsys, table_main, str(sweep_runs), "--vs", "kd", "--no-paper")
    assert code == 0 and "| resnet56 → resnet20 | DKD DKD.BETA=0.5 | -1.25 |" in out
    lines = sweep_lines(table.rows[0], "DKD.BETA")
    assert list(lines) == ["DKD"] and [(v, m) for v, m, _ in lines["DKD"]] == [("0.5", 70.0), ("2.0", 72.5),
                                                                              ("10.0", 75.0)]
    assert [s for _, _, s in lines["DKD"]] == pytest.approx([0.0, 0.5 ** 0.5, 2 ** 0.5])


def test_a_log_axis_only_beyond_a_factor_of_ten():
    assert log_axis(["0.5", "2", "10.0"]) and log_axis(["0.1", "1.0", "10.0"])
    assert not log_axis(["1", "2", "10"]) and not log_axis(["0", "10", "1000"]) and not log_axis(["a", "b"])


def test_plot_draws_accuracy_against_the_swept_value(sweep_runs, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plots"
    code, _, _ = call_cli(capsys, table_main, str(sweep_runs), "--plot", str(out), "--metric", "both")
    assert code == 0
    figure = out / "sweep_res56_res20_DKD.BETA.png"
    assert figure.is_file() and figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
