"""The benchmarks (mdistiller_ddkd.bench) and their command lines: tiny runs produce timings, ratios and tables."""

from __future__ import annotations

import statistics

import pytest
import torch

from mdistiller_ddkd.bench.breakdown import op_profile
from mdistiller_ddkd.bench.measurement import allocator_environment, kernel_work
from mdistiller_ddkd.bench.step import markdown_table, pair_config_file, run_benchmark


def test_bench_runs_and_reports_ratio_to_dkd():
    previous = torch.get_num_threads()
    try:
        results = run_benchmark("resnet14", "resnet8", ["DKD", "DDKD"], batch_size=2, steps=2, warmup=1,
                                threads=1, memory=False, repeats=3, clock="cpu")
    finally:
        torch.set_num_threads(previous)
    by_method = {r["method"]: r for r in results}
    assert by_method["DKD"]["ratio_to_dkd"] == 1.0 and by_method["DKD"]["paired_ratio_to_dkd"] == 1.0
    assert by_method["DKD"]["paired_ratio_to_dkd_per_repeat"] == [1.0, 1.0, 1.0]
    ddkd = by_method["DDKD"]
    assert ddkd["median_step_s"] > 0 and [len(r) for r in ddkd["step_times_s"]] == [2, 2, 2]
    # the protocol: per repeat, the median over rounds of the paired ratio; then the median over repeats
    per_repeat = [statistics.median(a / b for a, b in zip(mine, ref))
                  for mine, ref in zip(ddkd["step_times_s"], by_method["DKD"]["step_times_s"])]
    # (the recorded step times are rounded to 10 µs: the recomputation agrees to that precision)
    assert ddkd["paired_ratio_to_dkd_per_repeat"] == pytest.approx(per_repeat, rel=2e-3)
    assert ddkd["paired_ratio_to_dkd"] == pytest.approx(statistics.median(per_repeat), rel=1e-2)
    assert by_method["DDKD"]["extra_parameters"] > 0 == by_method["DKD"]["extra_parameters"]
    assert all(r["median_page_faults_per_step"] >= 0 and r["median_system_s_per_step"] >= 0 for r in results)
    assert all(r["allocator_environment"] == allocator_environment() for r in results)
    table = markdown_table(results)
    assert table.count("\n") == 3 and "| DDKD |" in table


def test_pair_config_files_are_found():
    assert pair_config_file("DDKD", "vgg13_mv2", "cifar100").endswith("configs/cifar100/ddkd/vgg13_mv2.yaml")
    assert pair_config_file("DDKD", "r50_mv1", "imagenet").endswith("configs/imagenet/r50_mv1/ddkd.yaml")
    assert pair_config_file("DDKD", "no_such_pair", "cifar100") is None


def test_bench_step_cli_writes_json_and_table(tmp_path, capsys):
    import json

    from mdistiller_ddkd.cli.bench_step import main

    out = tmp_path / "step.json"
    previous = torch.get_num_threads()
    try:
        assert main(["--teacher", "resnet14", "--student", "resnet8", "--methods", "KD", "DKD", "--batch-size", "2",
                     "--steps", "2", "--warmup", "1", "--threads", "1", "--no-memory", "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(previous)
    results = json.loads(out.read_text())
    assert [r["method"] for r in results] == ["KD", "DKD"] and results[0]["peak_memory_bytes"] is None
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(markdown_table(results))
    # timings are reported, never asserted against a budget (a loaded machine must not fail a correct build)
    print({r["method"]: round(1000 * r["median_step_s"], 2) for r in results}, "ms per step")


def test_bench_epoch_cli_one_tiny_epoch(tmp_path, capsys, monkeypatch):
    import json

    from mdistiller_ddkd.cli.bench_epoch import main

    monkeypatch.setenv("DDKD_BENCH_DIR", str(tmp_path / "work"))
    out = tmp_path / "epoch.json"
    assert main(["--pair", "resnet14", "resnet8", "--methods", "NONE", "--paths", "gpu", "--train-size", "64",
                 "--batch-size", "32", "--epochs", "1", "--device", "cpu", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 1 and rows[0]["train_images"] == 64 and rows[0]["path"] == "gpu_augment"
    assert rows[0]["images_per_s"] == pytest.approx(64 / rows[0]["epoch_seconds"])
    printed = capsys.readouterr().out
    assert "| NONE | gpu_augment | off | False |" in printed


def test_console_scripts_name_importable_mains():
    """Every ``console_scripts`` entry of setup.py (ddkd-bench, ddkd-bench-epoch, ...) resolves to a callable."""
    import importlib
    import os
    import re

    from tests.helpers import REPO_ROOT

    with open(os.path.join(REPO_ROOT, "setup.py"), encoding="utf-8") as f:
        entries = dict(re.findall(r'"([\w-]+)=([\w.]+:\w+)"', f.read()))
    assert {"ddkd-bench", "ddkd-bench-epoch"} <= set(entries)
    assert entries["ddkd-bench"] == "mdistiller_ddkd.cli.bench_step:main"
    for script, target in entries.items():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), script


def test_bench_user_errors_are_one_line_and_exit_2(capsys):
    from mdistiller_ddkd.cli.bench_step import main

    assert main(["--teacher", "resnet14", "--student", "resnet8", "--methods", "MAGIC", "--no-memory"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "MAGIC" in err and "\n" not in err


def test_the_cuda_path_refuses_cleanly_without_a_gpu(capsys):
    from mdistiller_ddkd.cli.bench_step import main

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the CUDA path runs instead of refusing")
    base = ["--teacher", "resnet14", "--student", "resnet8", "--no-memory"]
    assert main([*base, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: SOLVER.DEVICE is 'cuda' but no CUDA device") and err.count("\n") == 1
    assert main([*base, "--clock", "cuda"]) == 2
    assert "--clock cuda times CUDA events and needs --device cuda" in capsys.readouterr().err


def test_saved_tensor_bytes_count_what_autograd_keeps_for_backward():
    from mdistiller_ddkd.bench.measurement import saved_tensor_bytes

    x = torch.randn(32, 16, requires_grad=True)
    w = torch.randn(16, 8, requires_grad=True)
    out = {}
    with saved_tensor_bytes(out):
        y = (x @ w).relu()  # mm saves x and w; relu saves its output
    assert out["bytes"] == x.nbytes + w.nbytes + y.nbytes
    with saved_tensor_bytes(out):
        with torch.no_grad():
            (x @ w).relu()
    assert out["bytes"] == 0


def test_the_breakdown_counts_flops_and_times_each_part_both_ways(capsys):
    from mdistiller_ddkd.bench.breakdown import OP_KINDS, REST, breakdown, breakdown_table, profile_table

    previous = torch.get_num_threads()
    try:
        rows = breakdown("resnet14", "resnet8", batch_size=4, rounds=2, threads=1)
    finally:
        torch.set_num_threads(previous)
    by_part = {r["part"]: r for r in rows}
    assert set(by_part) == {"DKD training step", "DDKD training step", "autoencoder + feature branch",
                            "logit branch"}
    # DDKD's step does DKD's work and more; its parts are part of that more
    extra = by_part["DDKD training step"]["gflop"] - by_part["DKD training step"]["gflop"]
    parts = by_part["autoencoder + feature branch"]["gflop"] + by_part["logit branch"]["gflop"]
    assert 0 < parts <= extra * 1.05
    assert all(r["ms_fast"] > 0 and r["ms_plain"] > 0 for r in rows if "branch" in r["part"])
    assert breakdown_table(rows).count("\n") == 5
    for part in ("autoencoder + feature branch", "logit branch"):
        kinds = by_part[part]["ms_by_kind"]
        assert list(kinds) == [*OP_KINDS, REST] and kinds["matrix products"] > 0 and kinds["batch norm"] > 0
        assert sum(kinds.values()) == pytest.approx(by_part[part]["ms_fast"], abs=0.05)  # the rest closes the sum
    assert profile_table(rows).count("\n") == 3


def test_the_op_profile_puts_each_operator_in_its_kind():
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    kinds = op_profile(lambda: a @ b, rounds=3)
    assert kinds["matrix products"] > 0 and all(v == 0 for k, v in kinds.items() if k != "matrix products")
    kinds = op_profile(lambda: torch.randn(1000).relu_(), rounds=3)
    assert kinds["random noise"] > 0 and kinds["element-wise"] > 0 and kinds["matrix products"] == 0


def test_kernel_work_counts_the_page_faults_of_fresh_memory(monkeypatch):
    faults, _ = kernel_work()
    touched = torch.ones(16 * 2**20)  # 64 MiB, freshly mapped and written: ~16,000 4-KiB pages faulted in
    faults_after, _ = kernel_work()
    assert touched.numel() and faults_after - faults >= 8000
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1")
    monkeypatch.setenv("UNRELATED_SETTING", "1")
    assert allocator_environment().get("MALLOC_TRIM_THRESHOLD_") == "1"
    assert "UNRELATED_SETTING" not in allocator_environment()
