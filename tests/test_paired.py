"""Paired comparisons and best/last side by side, from fabricated run folders with known accuracies: the mean
per-seed difference, its Student-t interval, the seeds won and the verdict equal what is computed here by hand;
Student's t (no scipy at runtime) equals scipy's and the textbook's; JSON carries every per-seed value."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re

import pytest

from mdistiller_ddkd.cli.table import main as table_main
from mdistiller_ddkd.suite.compare import comparison_report
from mdistiller_ddkd.suite.paired import compare
from mdistiller_ddkd.suite.student_t import paired_t_power, seeds_for_power, t_cdf, t_quantile
from tests.helpers import REPO_ROOT, assert_one_line_error, call_cli
from tests.test_table import write_run

#: t_{0.975, df} from a printed table (two-sided 95 %)
TEXTBOOK_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 9: 2.262, 29: 2.045, 120: 1.980}


# -------------------------------------------------------------------------------------------- Student's t
@pytest.mark.parametrize("df,value", sorted(TEXTBOOK_T975.items()))
def test_t_quantiles_equal_the_printed_table(df, value):
    assert t_quantile(0.975, df) == pytest.approx(value, abs=5e-4)
    assert t_quantile(0.025, df) == pytest.approx(-value, abs=5e-4)


def test_t_distribution_equals_scipy():
    stats = pytest.importorskip("scipy.stats")  # the test extra installs scipy; the package does not need it
    for df in (1, 2, 3, 5, 10, 30, 200):
        for p in (0.6, 0.9, 0.975, 0.995, 0.9995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-10)
        for t in (-8.0, -1.3, 0.0, 0.2, 2.5, 40.0):
            assert t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-12)


def test_paired_power_equals_the_noncentral_t_of_scipy():
    stats = pytest.importorskip("scipy.stats")
    for n, delta, sd in ((2, 0.5, 0.6), (3, 1.0, 0.3), (5, 0.5, 0.85), (10, 0.5, 0.6), (25, 0.5, 0.85)):
        df, shift = n - 1, delta * math.sqrt(n) / sd
        critical = stats.t.ppf(0.975, df)
        expected = stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift)
        assert paired_t_power(delta, sd, n) == pytest.approx(expected, abs=1e-7)
    n = seeds_for_power(0.5, 0.6)
    assert paired_t_power(0.5, 0.6, n) >= 0.8 > paired_t_power(0.5, 0.6, n - 1)


# ------------------------------------------------------------------------------------- paired comparisons
@pytest.fixture
def paired_runs(tmp_path):
    """DKD on seeds 0-2, KD on the same seeds, DDKD on seeds 0, 1, 3, the student alone on seed 5 only."""
    root = tmp_path / "suite"
    for seed, (best, last) in enumerate([(71.0, 70.5), (72.0, 71.5), (73.5, 72.5)]):
        write_run(root, f"dkd-res56_res20-s{seed}", "DKD", "resnet56", "resnet20", seed, best, last)
    for seed, (best, last) in enumerate([(70.0, 69.0), (71.0, 70.0), (72.0, 71.0)]):
        write_run(root, f"kd-res56_res20-s{seed}", "KD", "resnet56", "resnet20", seed, best, last)
    for seed, (best, last) in zip((0, 1, 3), [(72.0, 71.0), (74.0, 73.0), (60.0, 60.0)]):
        write_run(root, f"ddkd-res56_res20-s{seed}", "DDKD", "resnet56", "resnet20", seed, best, last)
    write_run(root, "none-resnet20-s5", "NONE", "resnet20", "resnet20", 5, 69.0, 68.0)
    return root


def _json(root, *options):
    return json.loads(comparison_report([str(root)], fmt="json", **dict(options)))


def _comparisons(data, metric="best"):
    paired = next(p for p in data[0]["paired"] if p["metric"] == metric)
    return {c["column"]: c for c in paired["rows"][0]["comparisons"]}


def test_paired_differences_intervals_wins_and_verdicts_by_hand(paired_runs):
    found = _comparisons(_json(paired_runs, ("vs", "DKD")))
    kd = found["KD"]  # differences -1, -1, -1.5: mean -7/6, std √(1/12), t_{0.975,2} = 4.302653
    assert kd["seeds"] == [0, 1, 2] and kd["differences"] == pytest.approx([-1.0, -1.0, -1.5])
    half = 4.302652729749464 * math.sqrt(1 / 12) / math.sqrt(3)
    assert kd["mean"] == pytest.approx(-7 / 6) and kd["std"] == pytest.approx(math.sqrt(1 / 12))
    assert kd["interval"] == pytest.approx([-7 / 6 - half, -7 / 6 + half])
    assert kd["wins"] == 0 and kd["n"] == 3 and kd["verdict"] == "worse" and kd["paired"]
    ddkd = found["DDKD"]  # seeds 0, 1 shared: +1, +2; seed 3 only in DDKD, seed 2 only in DKD
    half = 12.706204736174698 * math.sqrt(0.5) / math.sqrt(2)
    assert ddkd["seeds"] == [0, 1] and ddkd["values"] == [72.0, 74.0] and ddkd["vs_values"] == [71.0, 72.0]
    assert ddkd["mean"] == pytest.approx(1.5) and ddkd["interval"] == pytest.approx([1.5 - half, 1.5 + half])
    assert ddkd["wins"] == 2 and ddkd["verdict"] == "no clear difference" and not ddkd["paired"]
    assert ddkd["only_column"] == [3] and ddkd["only_vs"] == [2]
    student = found["Student"]  # seed 5 against seeds 0-2: nothing to pair
    assert student["n"] == 0 and student["mean"] is None and student["verdict"] == "unpaired"
    assert student["only_column"] == [5] and student["only_vs"] == [0, 1, 2]


def test_better_and_one_seed_verdicts():
    better = compare("A", [2.0, 2.7, 3.4], [0, 1, 2], "B", [1.0, 1.5, 2.0], [0, 1, 2])  # +1.0, +1.2, +1.4
    half = 4.302652729749464 * 0.2 / math.sqrt(3)  # std of the differences: 0.2
    assert better.mean == pytest.approx(1.2) and better.half_width == pytest.approx(half)
    assert better.interval == pytest.approx([1.2 - half, 1.2 + half]) and 1.2 - half > 0
    assert better.verdict == "better" and better.wins == 3
    single = compare("A", [71.0, 50.0], [0, 9], "B", [70.0], [0])
    assert single.mean == pytest.approx(1.0) and single.interval is None and single.verdict == "one seed"
    twice = compare("A", [71.0, 72.0, 73.0], [0, 0, 1], "B", [70.0, 70.0], [0, 1])  # seed 0 twice: not pairable
    assert twice.seeds == [1] and twice.differences == [3.0]


def test_json_round_trips_and_recomputes(paired_runs):
    text = comparison_report([str(paired_runs)], fmt="json", vs="DKD", metric="both")
    data = json.loads(text)
    assert json.loads(json.dumps(data)) == data
    for metric in ("best", "last"):
        for c in _comparisons(data, metric).values():
            again = compare(c["column"], c["values"], c["seeds"], c["vs"], c["vs_values"], c["seeds"])
            assert again.as_dict() == {**c, "only_column": [], "only_vs": [], "paired": again.paired}
    assert _comparisons(data, "last")["KD"]["differences"] == pytest.approx([-1.5, -1.5, -1.5])


def test_markdown_and_csv_carry_the_comparisons(paired_runs):
    markdown = comparison_report([str(paired_runs)], vs="dkd")
    assert "paired differences against DKD (best epoch" in markdown
    kd_line = next(line for line in markdown.splitlines() if "resnet20 | KD |" in line)
    half = 4.302652729749464 * math.sqrt(1 / 12) / math.sqrt(3)
    assert f"| -1.17 | [{-7 / 6 - half:+.2f}, {-7 / 6 + half:+.2f}] | 0/3 | worse |" in kd_line
    assert "| 2/2 | no clear difference (seed(s) 3 only in DDKD; seed(s) 2 only in DKD: left out) |" in markdown
    assert "|  |  | unpaired (seed(s) 5 only in Student; seed(s) 0, 1, 2 only in DKD) |" in markdown
    rows = list(csv.DictReader(io.StringIO(comparison_report([str(paired_runs)], fmt="csv", vs="DKD"))))
    cifar = next(r for r in rows if r["pair"] == "res56_res20")
    assert float(cifar["KD_vs_DKD_best_diff"]) == pytest.approx(-7 / 6, abs=1e-4)
    assert float(cifar["KD_vs_DKD_best_high"]) == pytest.approx(-7 / 6 + half, abs=1e-4)
    assert cifar["KD_vs_DKD_best_wins"] == "0" and cifar["DDKD_vs_DKD_best_verdict"] == "no clear difference"
    assert float(cifar["DKD_mean"]) == pytest.approx(72.1667, abs=1e-4)  # the table's own columns stay


def test_vs_an_unknown_column_is_one_line(paired_runs, capsys):
    code, _, err = call_cli(capsys, table_main, str(paired_runs), "--vs", "CRD")
    assert_one_line_error(code, err, "--vs CRD: no such column", "KD, DKD, DDKD")
    code, out, _ = call_cli(capsys, table_main, str(paired_runs), "--vs", "NONE", "--format", "json")
    assert code == 0 and json.loads(out)[0]["paired"][0]["vs"] == "Student"


# ---------------------------------------------------------------------------------- best and last together
def test_metric_both_shows_both_numbers_for_every_cell(paired_runs, capsys):
    code, markdown, _ = call_cli(capsys, table_main, str(paired_runs), "--metric", "both")
    assert code == 0
    # DKD - KD = 1.17 < 2 x DKD's SE 0.73; DDKD's SE is 4.4: the three tie (ranks are the best epoch's)
    assert ("best 72.17 ± 1.26 (n=3), rank 1–3 (tie) · last 71.50 ± 1.00 (n=3) / paper 71.97 (+0.20)"
            in markdown)
    assert "best 71.00 ± 1.00 (n=3), rank 1–3 (tie) · last 70.00 ± 1.00 (n=3) / paper 70.66 (+0.34)" in markdown
    assert "best 69.00 (n=1) · last 68.00 (n=1)" in markdown and "mdistiller's convention" in markdown
    code, text, _ = call_cli(capsys, table_main, str(paired_runs), "--metric", "both", "--format", "csv")
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["pair"] == "res56_res20")
    assert row["metric"] == "both" and float(row["DKD_best_mean"]) == pytest.approx(72.1667, abs=1e-4)
    assert float(row["DKD_last_mean"]) == pytest.approx(71.5) and float(row["DKD_last_std"]) == pytest.approx(1.0)
    assert row["DDKD_best_n"] == row["DDKD_last_n"] == "3" and float(row["DKD_paper"]) == pytest.approx(71.97)
    code, text, _ = call_cli(capsys, table_main, str(paired_runs), "--metric", "both", "--format", "json")
    cells = json.loads(text)[0]["rows"][0]["cells"]
    for column in ("Student", "KD", "DKD", "DDKD"):
        assert set(cells[column]) == {"best", "last"} and cells[column]["best"]["n"] == cells[column]["last"]["n"]
    assert cells["DKD"]["last"]["values"] == [70.5, 71.5, 72.5] and cells["DKD"]["best"]["seeds"] == [0, 1, 2]


def test_the_power_table_of_the_usage_guide_is_computed():
    """docs/usage.md#comparing-methods-honestly: every number of its power table, recomputed."""
    with open(os.path.join(REPO_ROOT, "docs", "usage.md"), encoding="utf-8") as f:
        text = f.read()
    table = text[text.index("<!-- power table"):].split("\n\n")[0]
    rows = re.findall(r"^\| (0\.\d) \| (0\.\d) \| ([\d.]+) \| (\d+)% \| (\d+)% \| (\d+) \|$", table, re.M)
    assert len(rows) == 6
    for sigma, rho, sd_text, three, five, needed in rows:
        sd = float(sigma) * math.sqrt(2 * (1 - float(rho)))
        assert sd_text == f"{sd:.2f}"
        assert int(three) == round(100 * paired_t_power(0.5, sd, 3))
        assert int(five) == round(100 * paired_t_power(0.5, sd, 5))
        assert int(needed) == seeds_for_power(0.5, sd)
