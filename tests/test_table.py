"""Tables from fabricated run folders: exact means, sample standard deviations, counts, paper deltas, and
the ranks that show ties (means closer than twice the larger standard error are not ordered)."""

from __future__ import annotations

import csv
import io
import json
import math
import os

import pytest

from mdistiller_ddkd.cli.table import main as table_main
from mdistiller_ddkd.suite.paper import paper_value
from mdistiller_ddkd.suite.result_tables import Cell, build_tables, load_results, rank_ranges, separated
from mdistiller_ddkd.suite.table_formats import METRIC_LEGEND, render


def write_run(root, name, method, teacher, student, seed, best, last, dataset="cifar100", finished=True,
              best5=None):
    folder = os.path.join(str(root), name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "results.json"), "w") as f:
        json.dump({"method": method, "teacher": teacher, "student": student, "dataset": dataset, "seed": seed,
                   "epoch": 240 if finished else 10, "epochs": 240, "finished": finished, "best_acc": best,
                   "best_acc_top5": best5 if best5 is not None else best + 20, "last_acc": last,
                   "last_acc_top5": last + 20, "history": []}, f)


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "suite"
    for seed, (best, last) in enumerate([(71.0, 70.5), (72.0, 71.5), (73.0, 72.5)]):
        write_run(root, f"dkd-res56_res20-s{seed}", "DKD", "resnet56", "resnet20", seed, best, last)
    for seed, (best, last) in enumerate([(70.0, 69.0), (71.0, 70.0)]):
        write_run(root, f"kd-res56_res20-s{seed}", "KD", "resnet56", "resnet20", seed, best, last)
    write_run(root, "none-resnet20-s0", "NONE", "resnet20", "resnet20", 0, 69.0, 68.0)
    write_run(root, "none-resnet56-s0", "NONE", "resnet56", "resnet56", 0, 72.5, 72.0)
    write_run(root, "ddkd-res56_res20-s0", "DDKD", "resnet56", "resnet20", 0, 99.0, 99.0, finished=False)
    write_run(root, "dkd-vgg13_vgg8-s0", "DKD", "vgg13", "vgg8", 0, 74.0, 73.0)
    write_run(root, "demo", "KD", "resnet20", "resnet8", 0, 60.0, 59.0, dataset="synthetic")
    return root


def _cifar(tables):
    return next(t for t in tables if t.dataset == "cifar100")


def test_means_stds_counts_and_paper_deltas(runs):
    tables = build_tables(load_results([str(runs)]), metric="best")
    table = _cifar(tables)
    assert [(r.teacher, r.student) for r in table.rows] == [("resnet56", "resnet20"), ("vgg13", "vgg8")]
    assert table.columns == ["Teacher", "Student", "KD", "DKD"]  # unfinished DDKD is not counted
    row = table.rows[0]
    dkd = row.cells["DKD"]
    assert dkd.n == 3 and dkd.mean == pytest.approx(72.0) and dkd.std == pytest.approx(1.0)
    assert dkd.paper == pytest.approx(71.97) and dkd.diff == pytest.approx(72.0 - 71.97)
    kd = row.cells["KD"]
    assert kd.n == 2 and kd.mean == pytest.approx(70.5) and kd.std == pytest.approx(math.sqrt(0.5))
    assert kd.diff == pytest.approx(70.5 - 70.66)
    assert row.cells["Student"].mean == pytest.approx(69.0) and row.cells["Student"].std is None  # one run
    assert row.cells["Student"].diff == pytest.approx(69.0 - 69.06)
    assert row.cells["Teacher"].mean == pytest.approx(72.5) and row.cells["Teacher"].paper == pytest.approx(72.34)
    # vgg13 -> vgg8 has no KD run: the paper's value alone
    vgg = table.rows[1]
    assert vgg.cells["KD"].n == 0 and vgg.cells["KD"].paper == pytest.approx(72.98) and vgg.cells["KD"].diff is None
    assert vgg.cells["DKD"].diff == pytest.approx(74.0 - 74.68)


def test_last_epoch_metric_and_unfinished_runs(runs):
    table = _cifar(build_tables(load_results([str(runs)]), metric="last"))
    assert table.rows[0].cells["DKD"].mean == pytest.approx(71.5)
    with_unfinished = _cifar(build_tables(load_results([str(runs)], include_unfinished=True)))
    assert with_unfinished.rows[0].cells["DDKD"].mean == pytest.approx(99.0)


def test_markdown_csv_json(runs):
    tables = build_tables(load_results([str(runs)]))
    markdown = render(tables, "markdown")
    assert "| resnet56 → resnet20 |" in markdown
    # DKD (72.0, SE 0.58) and KD (70.5, SE 0.5) differ by 1.5 > 2 x 0.58: ordered
    assert "72.00 ± 1.00 (n=3), rank 1 / paper 71.97 (+0.03)" in markdown
    assert "70.50 ± 0.71 (n=2), rank 2 / paper 70.66 (-0.16)" in markdown
    assert "| 69.00 (n=1) / paper 69.06 (-0.06) |" in markdown  # one run: no std, no rank
    assert "60.00 (n=1)" in markdown and "± 0.00" not in markdown
    assert "a range such as 1–3 is a tie" in markdown  # the legend under a table with ranks
    rows = list(csv.DictReader(io.StringIO(render(tables, "csv"))))
    first = next(r for r in rows if r["pair"] == "res56_res20")
    assert float(first["DKD_mean"]) == pytest.approx(72.0) and float(first["DKD_std"]) == pytest.approx(1.0)
    assert first["DKD_n"] == "3" and float(first["DKD_diff"]) == pytest.approx(0.03)
    assert (first["DKD_rank"], first["KD_rank"], first["Student_rank"]) == ("1", "2", "")
    assert first["Student_n"] == "1" and first["Student_std"] == ""  # one run: the std is empty, not 0
    synthetic = next(r for r in rows if r["dataset"] == "synthetic")
    assert synthetic["KD_std"] == "" and synthetic["KD_n"] == "1"
    data = json.loads(render(tables, "json"))
    cifar = next(t for t in data if t["dataset"] == "cifar100")
    cells = cifar["rows"][0]["cells"]
    assert cells["DKD"]["values"] == [71.0, 72.0, 73.0]
    assert cells["DKD"]["se"] == pytest.approx(1 / math.sqrt(3)) and cells["DKD"]["rank"] == [1, 1]
    assert cells["Student"]["std"] is None and cells["Student"]["se"] is None and cells["Student"]["rank"] is None
    demo = next(t for t in data if t["dataset"] == "synthetic")
    assert demo["rows"][0]["cells"]["KD"]["std"] is None


def test_top5_reads_the_top5_values(runs):
    table = _cifar(build_tables(load_results([str(runs)]), topk=5))
    assert table.rows[0].cells["DKD"].mean == pytest.approx(92.0)
    assert table.rows[0].cells["DKD"].paper is None  # the paper gives top-5 only for ImageNet
    assert paper_value("imagenet", "ResNet34", "ResNet18", "DDKD", topk=5) == pytest.approx(90.82)


def test_cli(runs, capsys):
    assert table_main([str(runs), "--format", "csv", "--metric", "last"]) == 0
    out = capsys.readouterr().out
    assert "res56_res20" in out and "71.5000" in out
    assert table_main([str(runs / "nowhere")]) == 2


# ------------------------------------------------------------------------- the one Markdown formatter
def test_markdown_table_layout_and_alignment():
    from mdistiller_ddkd.markdown_table import markdown_table

    text = markdown_table(["method", "ms", "note"], [["KD", 1.5, ""], ["DKD", "12.0", "x"]], align="lrc")
    assert text == ("| method | ms | note |\n"
                    "|---|---:|:---:|\n"
                    "| KD | 1.5 |  |\n"
                    "| DKD | 12.0 | x |")
    assert markdown_table(["a"], []) == "| a |\n|---|"  # left-aligned by default, no rows
    with pytest.raises(ValueError, match="one of"):
        markdown_table(["a", "b"], [], align="l")
    with pytest.raises(ValueError, match="1 cells for 2 columns"):
        markdown_table(["a", "b"], [["only"]])


def test_benchmark_tables_render_through_the_formatter():
    from mdistiller_ddkd.bench.epoch import markdown_table as epoch_table
    from mdistiller_ddkd.bench.step import markdown_table as step_table

    step = step_table([{"method": "DKD", "median_step_s": 0.02468, "ratio_to_dkd": 1.0, "paired_ratio_to_dkd": 1.0,
                        "peak_memory_bytes": None, "saved_tensor_bytes": 3 * 2**19, "extra_parameters": 1234567}])
    assert step.splitlines() == [
        "| method | median step (ms) | × DKD (medians) | × DKD (paired) | peak memory (MiB) "
        "| saved for backward (MiB) | extra params |",
        "|---|---:|---:|---:|---:|---:|---:|",
        "| DKD | 24.7 | 1.000 | 1.000 | – | 1.5 | 1,234,567 |"]
    rows = [{"method": m, "path": p, "amp": "off", "channels_last": False, "images_per_s": v, "epoch_seconds": 2.0,
             "peak_memory_bytes": 3 * 2**20}
            for m, p, v in (("DKD", "dataloader", 100.0), ("DDKD", "gpu_augment", 150.0))]
    assert epoch_table(rows).splitlines() == [
        "| method | path | amp | channels-last | images/s | epoch s | peak memory (MiB) | ×DKD | ×DataLoader |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
        "| DKD | dataloader | off | False | 100.0 | 2.00 | 3 | 1.00 | 1.00 |",
        "| DDKD | gpu_augment | off | False | 150.0 | 2.00 | 3 | — | — |",  # no DKD on gpu, no DDKD loader run
    ]


def test_result_table_markdown_layout(runs):
    tables = build_tables(load_results([str(runs)]), dataset="synthetic")
    assert render(tables, "markdown") == (
        "**synthetic: top-1 accuracy (%), best epoch, mean ± std over seeds**\n\n"
        "| Teacher → Student | Teacher | Student | KD |\n"
        "|---|---|---|---|\n"
        "| resnet20 → resnet8 |  |  | 60.00 (n=1) |\n\n"
        f"{METRIC_LEGEND['best']}")  # one run: no std, no rank, so no rank legend; the metric's legend always


# ------------------------------------------------------------------------------------------ ranks and ties
def _cell(*values: float) -> Cell:
    return Cell(list(values))


def test_two_means_are_ordered_only_beyond_twice_the_larger_standard_error():
    a = _cell(90.0, 92.0, 94.0)  # mean 92, std 2, SE 2/√3 = 1.155
    assert separated(a, _cell(89.5, 89.6, 89.7))  # 92 - 89.6 = 2.4 > 2 x 1.155
    assert not separated(a, _cell(89.8, 89.9, 90.0))  # 2.1 < 2.31: a tie, whichever SE is the smaller
    assert not separated(_cell(89.8, 89.9, 90.0), a)
    assert not separated(a, _cell(50.0))  # one run: no SE, never ordered
    assert separated(_cell(1.0, 1.0), _cell(0.5, 0.5))  # no spread at all: any difference orders


def test_rank_ranges_show_ties_and_stay_honest_when_ties_do_not_chain():
    # A (SE 0.58) is above C (SE 0.58) by 2 > 1.15; B (SE 2.9) ties with both: A 1-2, B 1-3, C 2-3
    cells = {"A": _cell(9.0, 10.0, 11.0), "B": _cell(4.0, 9.0, 14.0), "C": _cell(7.0, 8.0, 9.0)}
    assert rank_ranges(cells) == {"A": (1, 2), "B": (1, 3), "C": (2, 3)}
    apart = {"A": _cell(9.0, 10.0, 11.0), "C": _cell(1.0, 2.0, 3.0), "one": _cell(50.0)}
    assert rank_ranges(apart) == {"A": (1, 1), "C": (2, 2)}  # the single run is not ranked


def test_the_teacher_column_is_not_ranked(tmp_path):
    for seed in range(3):
        write_run(tmp_path, f"teacher-s{seed}", "NONE", "resnet20", "resnet20", seed, 99.0 + seed / 10, 99.0,
                  dataset="synthetic")
        write_run(tmp_path, f"kd-s{seed}", "KD", "resnet20", "resnet8", seed, 90.0 + seed, 90.0, dataset="synthetic")
        write_run(tmp_path, f"none-s{seed}", "NONE", "resnet8", "resnet8", seed, 80.0 + seed, 80.0, dataset="synthetic")
    row = build_tables(load_results([str(tmp_path)]))[0].rows[0]
    assert row.cells["Teacher"].rank is None and row.cells["Teacher"].n == 3
    assert (row.cells["KD"].rank, row.cells["Student"].rank) == ((1, 1), (2, 2))
