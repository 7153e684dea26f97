"""Slurm suites without a cluster: options, time limits, job scripts, the records that keep a folder to one
suite definition, the job runner's requeue and give-up rules, status lines, and every refusal being one line
before anything is submitted. The real cluster is in tests/e2e/test_slurm.py."""

from __future__ import annotations

import json
import os
import sys

import pytest

from mdistiller_ddkd.cli.suite import main as suite_main
from mdistiller_ddkd.errors import ConfigError, ExitCode
from mdistiller_ddkd.suite.plan import plan_suite
from mdistiller_ddkd.suite.records import SuiteRecords
from mdistiller_ddkd.suite.slurm import SlurmOptions, job_script, time_limit_seconds
from mdistiller_ddkd.suite.slurm_job import run_job
from mdistiller_ddkd.suite.spec import suite_from_dict
from mdistiller_ddkd.suite.status import render_status, suite_status
from tests.helpers import assert_one_line_error, call_cli

SUITE = {"name": "s", "dataset": "synthetic", "methods": ["NONE", "KD"], "seeds": [0],
         "pairs": [{"name": "r14_r8", "teacher": "resnet14", "student": "resnet8"}],
         "config": "configs/demo/{method}.yaml", "vanilla_config": "configs/demo/none.yaml",
         "teacher_config": "configs/demo/teacher.yaml"}


def _plan(tmp_path, **changes):
    return plan_suite(suite_from_dict({**SUITE, **changes}), output=str(tmp_path / "out"))


@pytest.mark.parametrize("text,seconds", [("30", 1800), ("1", 60), ("05:30", 330), ("02:00:00", 7200),
                                          ("1-00", 86400), ("1-02:30", 95400), ("2-00:00:10", 172810)])
def test_slurm_time_limits_in_every_format(text, seconds):
    assert time_limit_seconds(text) == seconds


def test_options_come_from_the_suite_file_then_the_command_line():
    options = SlurmOptions.from_dict({"partition": "gpu", "cpus": 8, "extra": "--constraint=a100"})
    merged = options.merged(partition=None, cpus=2, extra=["--exclusive"], time="4:00:00")
    assert (merged.partition, merged.cpus, merged.time) == ("gpu", 2, "4:00:00")
    assert merged.extra == ["--constraint=a100", "--exclusive"]
    with pytest.raises(ConfigError, match="unknown slurm option.*gpu_count"):
        SlurmOptions.from_dict({"gpu_count": 1})


def test_a_job_script_asks_for_everything_and_waits_for_its_teacher(tmp_path):
    plan = _plan(tmp_path)
    student = next(r for r in plan.runs if r.method == "KD")
    options = SlurmOptions(partition="gpu", gpus=2, cpus=6, mem="32G", time="2-00:00:00", account="lab", qos="hi",
                           extra=["--constraint=a100"], signal_lead=300)
    script = job_script(plan.root, student, options, "ddkd-s-slot1", ["41"], singleton=True)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --gres=gpu:2", "#SBATCH --cpus-per-task=6",
                 "#SBATCH --mem=32G", "#SBATCH --time=2-00:00:00", "#SBATCH --account=lab", "#SBATCH --qos=hi",
                 "#SBATCH --requeue", "#SBATCH --signal=B:TERM@300", "#SBATCH --dependency=afterok:41,singleton",
                 "#SBATCH --kill-on-invalid-dep=yes", "#SBATCH --constraint=a100",
                 "export OMP_NUM_THREADS=3  # per process"):
        assert line in script.splitlines(), line
    assert "torch.distributed.run --standalone --nproc_per_node 2" in script  # two GPUs: torchrun
    assert f"exec {sys.executable} -m mdistiller_ddkd.cli.suite_job" in script
    teacher = next(r for r in plan.runs if r.role == "teacher")
    alone = job_script(plan.root, teacher, SlurmOptions(gpus=0), "ddkd-s-t", [], singleton=False)
    assert "--gres" not in alone and "--dependency" not in alone and "--partition" not in alone


def test_a_folder_keeps_to_one_suite_definition(tmp_path):
    records = SuiteRecords(_plan(tmp_path).root)
    records.claim(_plan(tmp_path))
    records.claim(_plan(tmp_path, seeds=[0, 1]))  # more seeds: new runs beside the old ones
    with pytest.raises(ConfigError, match="different definition of suite 's'"):
        records.claim(_plan(tmp_path, overrides={"SOLVER.EPOCHS": 3}))


def _job(tmp_path, code: int, max_requeues: int = 3):
    plan = _plan(tmp_path)
    run = plan.runs[0]
    marker = tmp_path / "ran"
    records = SuiteRecords(plan.root)
    command = [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('x'); raise SystemExit({code})"]
    records.write_job(run.name, {"run": run.name, "command": command, "output_dir": run.output_dir,
                                 "max_requeues": max_requeues})
    return records, run, marker


def test_the_job_runner_records_each_attempt_and_gives_up_without_progress(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    records, run, marker = _job(tmp_path, code=143, max_requeues=2)
    assert run_job(records.root, run.name) == 143  # stopped by a signal: would requeue under Slurm
    assert run_job(records.root, run.name) == 143
    assert run_job(records.root, run.name) == ExitCode.RUNS_FAILED  # a third start still at epoch 0: failed
    assert marker.read_text() == "xx"  # the training was not started the third time
    record = records.record(run.name)
    assert [a.code for a in record.attempts] == [143, 143, ExitCode.RUNS_FAILED]
    assert "without a new epoch" in record.attempts[-1].reason
    status = render_status(suite_status(_plan(tmp_path)), "s")
    assert "failed" in status.splitlines()[0] and f"exit code {int(ExitCode.RUNS_FAILED)}" in status.splitlines()[0]


def test_status_of_a_local_suite_says_done_interrupted_and_not_started(tmp_path):
    plan = _plan(tmp_path)
    done, interrupted = plan.runs[0], plan.runs[1]
    os.makedirs(done.output_dir)
    json.dump({"finished": True, "epoch": 2, "epochs": 2, "best_acc": 50.0, "last_acc": 40.0},
              open(os.path.join(done.output_dir, "results.json"), "w"))
    os.makedirs(interrupted.output_dir)
    open(os.path.join(interrupted.output_dir, "latest"), "wb").write(b"x")
    json.dump({"finished": False, "epoch": 1, "epochs": 2},
              open(os.path.join(interrupted.output_dir, "results.json"), "w"))
    lines = render_status(suite_status(plan), "s").splitlines()
    assert "done" in lines[0] and "best 50.00%, last 40.00%" in lines[0]
    assert "interrupted" in lines[1] and "epoch 1/2" in lines[1]
    assert "not started" in lines[2] and lines[-1] == "suite s: 3 runs: 1 done, 1 interrupted, 1 not started"


def test_refusals_are_one_line_and_submit_nothing(capsys, tmp_path, monkeypatch):
    (tmp_path / "s.yaml").write_text(json.dumps({**SUITE, "slurm": {"time": "1", "signal_lead": 120}}))
    monkeypatch.chdir(tmp_path)
    code, _, err = call_cli(capsys, suite_main, "s.yaml", "--slurm")
    assert_one_line_error(code, err, "not longer than the signal's lead time")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, no sinfo
    code, _, err = call_cli(capsys, suite_main, "s.yaml", "--slurm", "--time", "2:00:00")
    assert_one_line_error(code, err, "no Slurm here: sinfo is not on PATH")
    assert not os.path.exists(tmp_path / "output")


def test_the_imagenet_table_asks_for_eight_gpus_and_torchrun(capsys):
    code = suite_main(["table1", "--slurm", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("#SBATCH --gres=gpu:8") == out.count("#!/bin/bash") > 0
    assert "--nproc_per_node 8" in out and "#SBATCH --cpus-per-task=32" in out
