"""Suites on a real Slurm cluster (the single-node one ``tests/cluster/slurm_up.sh`` starts; CI starts it
first): a suite submitted once finishes with every run bit-identical to the same suite run locally, also
the runs that were interrupted — one job requeued mid-epoch with ``scontrol requeue``, one sent
``scancel --signal=TERM --full``, one reaching its time limit mid-run — ``status`` shows the requeues, the
table equals the local one, and submitting again submits nothing; a plain ``scancel`` ends a running job
without a requeue.

Where no Slurm answers (a laptop) the test skips with that reason; in CI (``CI=true``) that is a failure.
Requeued jobs wait for a begin time Slurm sets two minutes ahead; the test, as an administrator would,
lets them start at once (``scontrol update StartTime=now``) to stay within a few minutes."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Dict, Optional

import pytest
import torch

from mdistiller_ddkd.errors import ExitCode
from mdistiller_ddkd.suite.records import SuiteRecords
from mdistiller_ddkd.suite.slurm_job import current_epoch
from tests.helpers import REPO_ROOT, in_ci, run_cli, slurm_env

SUITE = os.path.join(REPO_ROOT, "tools", "suite.py")
RUNS = ("teacher-resnet14-s0", "none-resnet8-s0", "kd-r14_r8-s0", "dkd-r14_r8-s0")
SUITE_YAML = """\
name: slurm_e2e
dataset: synthetic
methods: [NONE, KD, DKD]
pairs: [{name: r14_r8, teacher: resnet14, student: resnet8}]
seeds: [0]
config: configs/demo/{method}.yaml
vanilla_config: configs/demo/none.yaml
teacher_config: configs/demo/teacher.yaml
overrides: {DATASET.SYNTHETIC.TRAIN_PER_CLASS: 48, DATASET.SYNTHETIC.TEST_PER_CLASS: 10, SOLVER.EPOCHS: 8,
            SOLVER.LR_DECAY_STAGES: [6], DKD.WARMUP: 2, LOG.SAVE_CHECKPOINT_FREQ: 0, DATASET.NUM_WORKERS: 0}
method_overrides: {DKD: {SOLVER.EPOCHS: 48}}
slurm: {cpus: 1, mem: 1500M, time: "20:00", signal_lead: 30}
"""


@pytest.fixture(scope="module")
def cluster():
    env = slurm_env()
    if env is None:
        reason = "no Slurm cluster answers (sinfo); start one with `bash tests/cluster/slurm_up.sh` (root)"
        if in_ci():
            pytest.fail(f"CI must run the Slurm test: {reason}")
        pytest.skip(reason)
    return env


def _suite(tmp_path, cluster, command: str, *args, timeout=900):
    """``ddkd-suite COMMAND suite.yaml ARGS`` in ``tmp_path``, one thread per training, on the cluster."""
    env = {"OMP_NUM_THREADS": "1", "SLURM_CONF": cluster.get("SLURM_CONF", "")}
    return run_cli([SUITE, command, str(tmp_path / "suite.yaml"), *args], cwd=str(tmp_path), timeout=timeout,
                   env_extra={k: v for k, v in env.items() if v})


def _scontrol(cluster, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["scontrol", *args], env=cluster, capture_output=True, text=True, timeout=30)


def _job_state(cluster, job_id: str) -> Dict[str, str]:
    """``{"JobState": ..., "Reason": ..., "Restarts": ...}`` of a job Slurm still holds."""
    out = _scontrol(cluster, "show", "job", "-o", job_id).stdout
    fields = dict(item.split("=", 1) for item in out.split() if "=" in item)
    return {k: fields.get(k, "") for k in ("JobState", "Reason", "Restarts", "TimeLimit")}


def _job_id(folder: str, run: str) -> str:
    import json

    with open(os.path.join(folder, ".suite", "jobs", f"{run}.json")) as f:
        return str(json.load(f)["job_ids"][-1])


class Cluster:
    """Waits for what the jobs do, acting on them as a user or an administrator would."""

    def __init__(self, env, folder: str, deadline: float) -> None:
        self.env, self.folder, self.deadline = env, folder, deadline

    def wait(self, what: str, test) -> None:
        while not test():
            assert time.time() < self.deadline, f"timed out waiting for {what}"
            self.release_requeued()
            time.sleep(1)

    def running_mid_run(self, run: str, epochs: int = 1) -> bool:
        job = _job_id(self.folder, run)
        return (_job_state(self.env, job)["JobState"] == "RUNNING"
                and current_epoch(os.path.join(self.folder, run)) >= epochs)

    def release_requeued(self) -> None:
        """Requeued jobs wait for a begin time two minutes ahead: let them start now."""
        for run in RUNS:
            if os.path.isfile(os.path.join(self.folder, ".suite", "jobs", f"{run}.json")):
                job = _job_id(self.folder, run)
                if _job_state(self.env, job)["Reason"] == "BeginTime":
                    _scontrol(self.env, "update", f"JobId={job}", "StartTime=now")

    def requeues(self, run: str) -> int:
        return int(_job_state(self.env, _job_id(self.folder, run))["Restarts"] or 0)


def _weights(folder: str, run: str):
    return torch.load(os.path.join(folder, run, "latest"), weights_only=True)["model"]


def test_a_suite_submitted_once_survives_requeue_signal_and_time_limit_bit_identically(cluster, tmp_path):
    (tmp_path / "suite.yaml").write_text(SUITE_YAML)
    local = _suite(tmp_path, cluster, "run", "--output", "local", "--jobs", "2", "--quiet")
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]
    submitted = _suite(tmp_path, cluster, "run", "--slurm", "--output", "slurm", timeout=120)
    assert submitted.returncode == 0 and "4 job(s) submitted" in submitted.stdout, submitted.stdout + submitted.stderr
    folder = str(tmp_path / "slurm" / "slurm_e2e")
    c = Cluster(cluster, folder, time.time() + 600)

    c.wait("the teacher mid-run", lambda: c.running_mid_run("teacher-resnet14-s0", 2))
    assert _scontrol(cluster, "requeue", _job_id(folder, "teacher-resnet14-s0")).returncode == 0
    c.wait("KD mid-run", lambda: c.running_mid_run("kd-r14_r8-s0"))
    signal = subprocess.run(["scancel", "--signal=TERM", "--full", _job_id(folder, "kd-r14_r8-s0")], env=cluster,
                            capture_output=True, text=True)
    assert signal.returncode == 0, signal.stderr
    c.wait("DKD running", lambda: c.running_mid_run("dkd-r14_r8-s0", 0))
    dkd = _job_id(folder, "dkd-r14_r8-s0")
    # 1 minute, so the signal comes 30 s after the job started; DKD's 48 epochs take ~90 s on an idle 2-core
    # machine (with 16 an idle machine finished them in 30 s, before the signal, and nothing was requeued)
    assert _scontrol(cluster, "update", f"JobId={dkd}", "TimeLimit=1").returncode == 0
    c.wait("DKD to reach its time limit and requeue itself", lambda: c.requeues("dkd-r14_r8-s0") >= 1
           or _not_finished_first(folder, "dkd-r14_r8-s0"))
    assert _scontrol(cluster, "update", f"JobId={dkd}", "TimeLimit=20").returncode == 0
    c.wait("every run to finish", lambda: all(_done(folder, r) for r in RUNS))

    for run in RUNS:
        ours, theirs = _weights(folder, run), _weights(str(tmp_path / "local" / "slurm_e2e"), run)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), f"{run} differs from its local twin"
    status = _suite(tmp_path, cluster, "status", "--output", "slurm").stdout
    for run, label in (("teacher", "NONE resnet14 (teacher)"), ("kd", "KD resnet14->resnet8"),
                       ("dkd", "DKD resnet14->resnet8")):
        line = next(line for line in status.splitlines() if label in line)
        assert "done" in line and "requeued 1x" in line, status
    assert "4 runs: 4 done" in status, status
    tables = [_suite(tmp_path, cluster, "report", "--output", where).stdout for where in ("local", "slurm")]
    assert tables[0] == tables[1] and "resnet14 → resnet8" in tables[0]
    again = _suite(tmp_path, cluster, "run", "--slurm", "--output", "slurm", timeout=120)
    assert again.returncode == 0 and "0 job(s) submitted" in again.stdout and "4 finished" in again.stdout


def _not_finished_first(folder: str, run: str) -> bool:
    """False while ``run`` has not finished; a run that finished before the event awaited fails the test now
    (rather than at the deadline), naming why."""
    assert not _done(folder, run), f"{run} finished before its time limit: the machine is faster than this test assumes"
    return False


def _done(folder: str, run: str) -> bool:
    """Whether ``run`` has written its results and marked them finished."""
    return os.path.isfile(os.path.join(folder, run, "results.json")) and bool(_finished(folder, run))


def _finished(folder: str, run: str) -> Optional[bool]:
    import json

    with open(os.path.join(folder, run, "results.json")) as f:
        return json.load(f).get("finished")


def test_refusals_on_the_cluster_are_one_line_and_submit_nothing(cluster, tmp_path):
    (tmp_path / "suite.yaml").write_text(SUITE_YAML)
    unknown = _suite(tmp_path, cluster, "run", "--slurm", "--partition", "no_such_partition", timeout=120)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: unknown partition 'no_such_partition'")
    assert unknown.stderr.count("\n") == 1 and not (tmp_path / "output").exists()
    # a folder holding another definition of the suite (here: other overrides for the same runs)
    (tmp_path / "output" / "suites" / "slurm_e2e" / ".suite").mkdir(parents=True)
    (tmp_path / "output" / "suites" / "slurm_e2e" / ".suite" / "definition.json").write_text(
        '{"none-resnet8-s0": ["-m", "mdistiller_ddkd.cli.train", "--cfg", "other.yaml"]}')
    other = _suite(tmp_path, cluster, "run", "--slurm", timeout=120)
    assert other.returncode == 2 and "written by a different definition of suite 'slurm_e2e'" in other.stderr
    assert other.stderr.count("\n") == 1
    assert not os.path.exists(tmp_path / "output" / "suites" / "slurm_e2e" / ".suite" / "jobs")
    # more CPUs per run than the node has (slurm_up.sh gives it this machine's): pending for ever, so refused
    cpus = os.cpu_count() or 1
    too_many = _suite(tmp_path, cluster, "run", "--slurm", "--output", "big", "--cpus-per-run", str(cpus + 1),
                      timeout=120)
    assert too_many.returncode == 2 and too_many.stderr.count("\n") == 1, too_many.stderr
    assert too_many.stderr.startswith(f"error: --cpus-per-run {cpus + 1}: no node of partition debug")
    assert f"the largest has {cpus}" in too_many.stderr and not (tmp_path / "big").exists()


def test_status_says_why_a_job_waits(cluster, tmp_path):
    """Every job of a suite waits for a job its user holds (so nothing runs): ``status`` shows Slurm's reason,
    ``Dependency``, beside each ``pending``."""
    held = subprocess.run(["sbatch", "--parsable", "--hold", "--output=/dev/null", "--wrap", "true"], env=cluster,
                          capture_output=True, text=True, timeout=30)
    assert held.returncode == 0, held.stderr
    (tmp_path / "suite.yaml").write_text(SUITE_YAML)
    folder, jobs = str(tmp_path / "slurm" / "slurm_e2e"), [held.stdout.strip().split(";")[0]]
    try:
        # the suite's own --dependency line for a student comes first; this later one replaces it
        submitted = _suite(tmp_path, cluster, "run", "--slurm", "--output", "slurm",
                           f"--sbatch=--dependency=afterok:{jobs[0]}", timeout=120)
        assert submitted.returncode == 0 and "4 job(s) submitted" in submitted.stdout, submitted.stderr
        jobs += [_job_id(folder, run) for run in RUNS]
        status = _suite(tmp_path, cluster, "status", "--output", "slurm", timeout=120).stdout
        for label in ("NONE resnet14 (teacher)", "NONE resnet8", "KD resnet14->resnet8", "DKD resnet14->resnet8"):
            line = next(line for line in status.splitlines() if label in line)
            assert "pending" in line and "Slurm reason: Dependency" in line, status
    finally:
        subprocess.run(["scancel", *jobs], env=cluster, capture_output=True, timeout=30)  # none of them started


def test_a_plain_scancel_ends_a_running_job_without_requeueing_it(cluster, tmp_path):
    """``scancel JOB`` (not ``--signal``): the training checkpoints, the job leaves the queue without requeueing
    itself, ``status`` says cancelled, and submitting again submits the run to resume it."""
    (tmp_path / "suite.yaml").write_text(SUITE_YAML.replace("methods: [NONE, KD, DKD]", "methods: [NONE]")
                                         .replace("SOLVER.EPOCHS: 8", "SOLVER.EPOCHS: 200"))
    folder, run = str(tmp_path / "slurm" / "slurm_e2e"), "none-resnet8-s0"
    submitted = _suite(tmp_path, cluster, "run", "--slurm", "--output", "slurm", timeout=120)
    assert submitted.returncode == 0 and "job(s) submitted" in submitted.stdout, submitted.stdout + submitted.stderr
    job = _job_id(folder, run)
    try:
        c = Cluster(cluster, folder, time.time() + 300)
        c.wait("the run mid-run", lambda: c.running_mid_run(run))
        assert subprocess.run(["scancel", job], env=cluster, timeout=30).returncode == 0
        c.wait("the job to leave the queue", lambda: _left_without_requeue(cluster, job))
        last = SuiteRecords(folder).record(run).last
        assert last.code == ExitCode.SIGTERM and last.cancelled and not last.requeued
        status = _suite(tmp_path, cluster, "status", "--output", "slurm", timeout=120)
        line = next(line for line in status.stdout.splitlines() if "NONE resnet8" in line)
        assert status.returncode == 0 and "cancelled" in line and f"job {job}" in line, status.stdout
        assert torch.load(os.path.join(folder, run, "latest"), weights_only=True)["epoch"] >= 1
        again = _suite(tmp_path, cluster, "run", "--slurm", "--output", "slurm", timeout=120)
        assert again.returncode == 0 and "1 job(s) submitted" in again.stdout and _job_id(folder, run) != job
    finally:  # the teacher's job and the new one
        jobs = [_job_id(folder, name[:-5]) for name in os.listdir(os.path.join(folder, ".suite", "jobs"))
                if name.endswith(".json")]
        subprocess.run(["scancel", *jobs], env=cluster, capture_output=True, timeout=30)


def _left_without_requeue(cluster, job: str) -> bool:
    """Whether ``job`` has ended cancelled; a requeue fails the test at once."""
    state = _job_state(cluster, job)
    assert state["Restarts"] in ("", "0") and state["JobState"] != "PENDING", f"job {job} was requeued: {state}"
    return state["JobState"] in ("", "CANCELLED")
