"""``LOG.WANDB True`` for real, in W&B's offline mode: the offline run is read back with W&B's own reader
(``wandb leet inspect --json``) and holds the run's identity, config, every epoch's record and the best
accuracy; ``--resume`` continues the same W&B run; under torchrun only rank 0 logs."""

from __future__ import annotations

import json
import os

import pytest

from mdistiller_ddkd.engine.hooks.wandb import RUN_ID_FILE
from tests.helpers import TRAIN, require_extra, run_cli, tiny_run_overrides, wandb_records, wandb_run_files

OFFLINE = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def _of_type(records, kind):
    return [r[kind] for r in records if r["type"] == kind]


def _check_history(records, history):
    """One W&B history row per epoch of results.json, at step = epoch, with every number of its record."""
    rows = {row["step"]["num"]: row["item"] for row in _of_type(records, "history")}
    assert sorted(rows) == [record["epoch"] for record in history]
    for record in history:
        row = rows[record["epoch"]]
        numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        assert {"train_loss", "test_acc", "test_acc_top5", "lr", "diag_grad_total"} <= set(numbers)
        for key, value in numbers.items():
            assert row[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def _last_summary(records):
    summary = {}
    for update in _of_type(records, "summary"):
        summary.update(update.get("update", {}))
    return summary


def test_an_offline_run_holds_every_epoch_and_resume_continues_it(tmp_path):
    require_extra("wandb", "wandb")
    prefix = tmp_path / "out"
    opts = tiny_run_overrides(prefix, **{"LOG.WANDB": "True", "EXPERIMENT.TAG": "none, tiny", "LOG.WANDB_GROUP": "grp",
                                         "LOG.DIAGNOSTICS": "True", "LOG.DIAGNOSTICS_FREQ": "0",
                                         "LOG.DIAGNOSTICS_BATCH": "4"})
    proc = run_cli([TRAIN, *opts], cwd=str(tmp_path), env_extra=OFFLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = prefix / "distill" / "run"
    run_id = json.loads((run_dir / RUN_ID_FILE).read_text())["run_id"]
    files = wandb_run_files(str(run_dir))
    assert len(files) == 1 and files[0].endswith(f"run-{run_id}.wandb")
    records = wandb_records(files[0])
    (run,) = _of_type(records, "run")
    assert (run["run_id"], run["project"], run["display_name"]) == (run_id, "distill", "run")
    assert run["tags"] == ["none", "tiny"] and run["run_group"] == "grp"
    config = run["config"]["update"]
    assert config["DISTILLER"]["TYPE"] == "NONE" and config["SOLVER"]["EPOCHS"] == 2 and config["LOG"]["WANDB"]
    results = json.loads((run_dir / "results.json").read_text())
    _check_history(records, results["history"])
    assert _last_summary(records)["best_acc"] == pytest.approx(results["best_acc"])

    # --resume (one more epoch), W&B's files elsewhere: the same W&B run continues there
    elsewhere = tmp_path / "wandb_dir"
    elsewhere.mkdir()
    proc = run_cli([TRAIN, "--resume", *opts, "SOLVER.EPOCHS", "3"], cwd=str(tmp_path),
                   env_extra={**OFFLINE, "WANDB_DIR": str(elsewhere)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert wandb_run_files(str(run_dir)) == files
    (resumed,) = wandb_run_files(str(elsewhere))
    records = wandb_records(resumed)
    assert _of_type(records, "run")[0]["run_id"] == run_id
    results = json.loads((run_dir / "results.json").read_text())
    _check_history(records, results["history"][2:])
    assert _last_summary(records)["best_acc"] == pytest.approx(results["best_acc"])


def test_only_rank_0_logs_under_torchrun(tmp_path):
    require_extra("wandb", "wandb")
    prefix = tmp_path / "out"
    opts = tiny_run_overrides(prefix, **{"LOG.WANDB": "True", "SOLVER.EPOCHS": "1",
                                         "DATASET.SYNTHETIC.TRAIN_PER_CLASS": "4"})
    proc = run_cli(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", TRAIN, *opts],
                   cwd=str(tmp_path), env_extra=OFFLINE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = prefix / "distill" / "run"
    (only,) = wandb_run_files(str(run_dir))
    assert [row["step"]["num"] for row in _of_type(wandb_records(only), "history")] == [1]
    assert not os.path.exists(os.path.join(str(tmp_path), "wandb"))
