"""DistributedDataParallel on CPU: two gloo processes through torchrun train on tiny data."""

import json

import pytest
import torch

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.evaluation import evaluate
from tests.helpers import TRAIN, run_cli, tiny_overrides


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tiny_cifar_root, tmp_path):
    args = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", TRAIN,
            *tiny_overrides(tiny_cifar_root, str(tmp_path), **{
                "DISTILLER.TYPE": "NONE", "EXPERIMENT.NAME": "ddp", "SOLVER.BATCH_SIZE": "32",
                "DATASET.TEST.BATCH_SIZE": "10", "SOLVER.SYNC_BN": "True"})]
    proc = run_cli(args, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = tmp_path / "distill" / "ddp"
    log = (out / "worklog.txt").read_text()
    assert log.count("epoch: ") == 2  # one set of logs: only rank 0 writes
    assert proc.stdout.count("epoch 2/2") == 1 and "world size 2" in proc.stdout
    assert "SYNC_BN ignored" in proc.stdout  # CPU: PyTorch's SyncBatchNorm is CUDA-only
    results = json.loads((out / "results.json").read_text())
    assert results["finished"] and results["epoch"] == 2

    # the metrics averaged across ranks equal a single-process evaluation of the same weights
    from mdistiller_ddkd.dataset.registry import build_splits
    from mdistiller_ddkd.distillers import Vanilla
    from mdistiller_ddkd.models import cifar_model_dict

    cfg = load_config(None, ["DATASET.ROOT", tiny_cifar_root, "DATASET.CHECK_INTEGRITY", "False",
                             "DATASET.DOWNLOAD", "False"])
    model = cifar_model_dict["resnet8"][0](num_classes=100)
    model.load_state_dict(torch.load(out / "student_latest", weights_only=True)["model"])
    loader = torch.utils.data.DataLoader(build_splits(cfg).test, batch_size=7)
    metrics = evaluate(Vanilla(model), loader, torch.device("cpu"))
    last = results["history"][-1]
    assert metrics["test_acc"] == pytest.approx(last["test_acc"], abs=1e-9)
    assert metrics["test_acc_top5"] == pytest.approx(last["test_acc_top5"], abs=1e-9)
    assert metrics["test_loss"] == pytest.approx(last["test_loss"], rel=1e-4)
