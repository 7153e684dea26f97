"""tools/bench_step.py's engine: a tiny run produces timings, ratios and a table."""

from __future__ import annotations

import torch

from mdistiller_ddkd.engine.bench import markdown_table, pair_config_file, run_benchmark


def test_bench_runs_and_reports_ratio_to_dkd():
    previous = torch.get_num_threads()
    try:
        results = run_benchmark("resnet14", "resnet8", ["DKD", "DDKD"], batch_size=2, steps=2, warmup=1,
                                threads=1, memory=False)
    finally:
        torch.set_num_threads(previous)
    by_method = {r["method"]: r for r in results}
    assert by_method["DKD"]["ratio_to_dkd"] == 1.0 and by_method["DKD"]["paired_ratio_to_dkd"] == 1.0
    assert by_method["DDKD"]["median_step_s"] > 0 and len(by_method["DDKD"]["step_times_s"]) == 2
    assert by_method["DDKD"]["extra_parameters"] > 0 == by_method["DKD"]["extra_parameters"]
    table = markdown_table(results)
    assert table.count("\n") == 3 and "| DDKD |" in table


def test_pair_config_files_are_found():
    assert pair_config_file("DDKD", "vgg13_mv2", "cifar100").endswith("configs/cifar100/ddkd/vgg13_mv2.yaml")
    assert pair_config_file("DDKD", "r50_mv1", "imagenet").endswith("configs/imagenet/r50_mv1/ddkd.yaml")
    assert pair_config_file("DDKD", "no_such_pair", "cifar100") is None
