"""Slurm suites without a cluster: options, time limits, job scripts, sinfo's and squeue's output (what nodes
offer, requests no node can hold, why a job waits), the records that keep a folder to one
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
from mdistiller_ddkd.suite.slurm import LiveJob, SlurmOptions, job_script, parse_squeue
from mdistiller_ddkd.suite.slurm_job import cancelled_in, run_job
from mdistiller_ddkd.suite.slurm_resources import (
    check_request,
    gres_gpus,
    memory_mb,
    nodes_of,
    parse_nodes,
    partition_time_limit,
    time_limit_seconds,
)
from mdistiller_ddkd.suite.spec import suite_from_dict
from mdistiller_ddkd.suite.status import render_status, run_status, suite_status
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


@pytest.mark.parametrize("show_job, restarts, cancelled", [
    ("JobId=7 JobName=x JobState=COMPLETING Reason=None Requeue=1 Restarts=0", 0, True),  # plain scancel
    ("JobId=7 JobName=x JobState=CANCELLED Reason=None Requeue=1 Restarts=2", 2, True),
    ("JobId=7 JobName=x JobState=COMPLETING Reason=None Requeue=1 Restarts=1", 0, False),  # scontrol requeue
    ("JobId=7 JobName=x JobState=RUNNING Reason=None Requeue=1 Restarts=0", 0, False),  # --signal, time limit
    ("", 0, False),  # no answer from Slurm: requeueing is harmless
])
def test_a_job_is_cancelled_when_it_ends_without_a_restart(show_job, restarts, cancelled):
    assert cancelled_in(show_job, restarts) is cancelled


def test_a_cancelled_attempt_shows_as_cancelled_not_failed(tmp_path):
    plan = _plan(tmp_path)
    records, run = SuiteRecords(plan.root), plan.runs[0]
    records.note(run.name, event="start", job_id="7", epoch=0)
    records.note(run.name, event="end", job_id="7", code=143, epoch=1, requeue=False, cancelled=True)
    lines = render_status(suite_status(plan), "s").splitlines()
    assert lines[0].split()[1] == "cancelled" and "failed" not in lines[-1]
    assert lines[-1] == "suite s: 3 runs: 1 cancelled, 2 not started"


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


@pytest.mark.parametrize("text,mb", [("16G", 16384), ("1500M", 1500), ("2048", 2048), ("1T", 1048576),
                                     ("512K", 1), ("4gb", 4096), ("0", 0)])
def test_memory_sizes_in_slurm_units(text, mb):
    assert memory_mb(text) == mb


def test_a_malformed_memory_size_names_the_option():
    with pytest.raises(ConfigError, match="--mem-per-run 'lots' is not a Slurm memory size"):
        memory_mb("lots")


@pytest.mark.parametrize("gres,gpus", [("(null)", 0), ("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4),
                                       ("gpu:a100:2,gpu:v100:1", 3), ("gpu:a100:2(S:0,1),tmpdisk:100", 2),
                                       ("tmpdisk:100", 0), ("gpu", 1)])
def test_gpus_of_a_nodes_gres(gres, gpus):
    assert gres_gpus(gres) == gpus


@pytest.mark.parametrize("text,seconds", [("infinite", None), ("1-00:00:00", 86400), ("2:00:00", 7200),
                                          ("30:00", 1800), ("UNLIMITED", None), ("n/a", None)])
def test_partition_time_limits_as_sinfo_prints_them(text, seconds):
    assert partition_time_limit(text) == seconds


SINFO = """\
cpu*|c1|16|8000|(null)|infinite
cpu*|c2|8|64000|(null)|infinite
gpu|g1|32|256000|gpu:a100:4(S:0-1)|2-00:00:00
gpu|g2|16|512000|gpu:a100:2,gpu:v100:1|2-00:00:00
"""


def test_the_nodes_of_the_default_and_of_a_named_partition():
    nodes = parse_nodes(SINFO + "a line sinfo never prints\n")
    assert [n.name for n in nodes_of(nodes, None)] == ["c1", "c2"]
    g1, g2 = nodes_of(nodes, "gpu")
    assert (g1.cpus, g1.mem_mb, g1.gpus, g1.time_limit) == (32, 256000, 4, 172800)
    assert (g2.gpus, nodes_of(nodes, None)[0].time_limit) == (3, None)


@pytest.mark.parametrize("request_,message", [
    ((17, "1G", 0, "1:00:00"), "--cpus-per-run 17: no node of partition cpu has that many CPUs (the largest has "
                                "16)"),
    ((1, "63G", 0, "1:00:00"), "--mem-per-run 63G: no node of partition cpu has that much memory (the largest "
                               "has 64000M = 62.5G)"),
    ((1, "1G", 1, "1:00:00"), "--gpus-per-run 1: no node of partition cpu has that many GPUs (the most is 0)"),
    ((12, "30G", 0, "1:00:00"), "no node of partition cpu has 12 CPUs, 30G and 0 GPUs together (c1: 16 CPUs, "
                                "8000M = 7.8G, 0 GPUs; c2: 8 CPUs, 64000M = 62.5G, 0 GPUs)"),
])
def test_a_request_no_node_can_hold_is_refused_naming_the_option(request_, message):
    nodes = nodes_of(parse_nodes(SINFO), None)
    with pytest.raises(ConfigError) as err:
        check_request(nodes, "cpu", *request_)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    flag = message.split()[0] if message.startswith("--") else "--cpus-per-run, --mem-per-run or --gpus-per-run"
    assert f"lower {flag}" in str(err.value)
    check_request(nodes, "cpu", 8, "62G", 0, "30-00:00:00")  # c2 holds it, and the partition has no time limit
    check_request([], "cpu", 1000, "1T", 8, "1")  # no nodes listed: nothing to check against


def test_what_sinfo_does_not_state_refuses_nothing():
    nodes = nodes_of(parse_nodes(SINFO + "cpu*|c3|N/A|N/A|(null)|n/a\n"), "cpu")
    assert (nodes[-1].cpus, nodes[-1].mem_mb, nodes[-1].time_limit) == (None, None, None)
    check_request(nodes, "cpu", 1000, "1T", 0, "1")  # c3 might hold it
    with pytest.raises(ConfigError, match="--gpus-per-run 1: no node"):  # but no node has GPUs
        check_request(nodes, "cpu", 1000, "1T", 1, "1")
    with pytest.raises(ConfigError, match=r"together \(g1: 32 CPUs, .*; c3: \? CPUs, \? memory, 0 GPUs\)"):
        check_request(nodes_of(parse_nodes(SINFO), "gpu")[:1] + nodes[-1:], "gpu", 64, "1G", 1, "1")


def test_a_time_limit_longer_than_the_partition_allows_is_refused():
    nodes = nodes_of(parse_nodes(SINFO), "gpu")
    with pytest.raises(ConfigError, match=r"^--time 3-00:00:00: partition gpu allows at most 2-00:00:00; lower --time"):
        check_request(nodes, "gpu", 8, "16G", 4, "3-00:00:00")
    check_request(nodes, "gpu", 8, "16G", 4, "2-00:00:00")
    check_request(nodes, "gpu", 16, "300G", 3, "1-00:00:00")  # g2: three GPUs of two types


def test_squeue_lines_give_the_live_jobs_and_why_the_pending_ones_wait():
    text = ("12|PENDING|Dependency\n13|RUNNING|None\n14|COMPLETED|None\n"
            "15|PENDING|ReqNodeNotAvail, UnavailableNodes:n1\n16|REQUEUE_HOLD|JobHeldUser\n")
    assert parse_squeue(text) == {"12": LiveJob("PENDING", "Dependency"), "13": LiveJob("RUNNING", ""),
                                  "15": LiveJob("PENDING", "ReqNodeNotAvail, UnavailableNodes:n1"),
                                  "16": LiveJob("REQUEUE_HOLD", "JobHeldUser")}


def test_status_shows_slurms_reason_beside_pending_and_what_to_do_when_waiting_cannot_help(tmp_path):
    plan = _plan(tmp_path)
    records = SuiteRecords(plan.root)
    for run, job in zip(plan.runs, ("41", "42", "43")):
        records.add_job_id(run.name, job)
    live = {"41": LiveJob("PENDING", "PartitionConfig"), "42": LiveJob("PENDING", "Dependency"),
            "43": LiveJob("PENDING", "")}
    lines = render_status([run_status(run, records.record(run.name), live) for run in plan.runs], "s").splitlines()
    assert lines[0].split()[1] == "pending" and ("Slurm reason: PartitionConfig (asks for more than the "
                                                 "partition's nodes have: scancel it, submit with less)") in lines[0]
    assert "Slurm reason: Dependency, epoch 0 (job 42)" in lines[1]
    assert "pending" in lines[2] and "reason" not in lines[2]
