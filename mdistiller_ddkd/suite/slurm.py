"""Suites on a Slurm cluster: one ``sbatch`` job per run, written as a plain script (``--dry-run --slurm``
prints them), teachers before their students (``afterok`` dependencies, ``--kill-on-invalid-dep``), every
job requeueable: ``--signal=B:TERM@lead`` asks the job, ``lead`` seconds before its time limit, to stop; the
job (``suite/slurm_job.py``) lets the training write its mid-epoch checkpoint, requeues itself with
``scontrol requeue`` and continues with ``--resume`` when Slurm starts it again — also after a preemption,
an ``scontrol requeue`` or an ``scancel --signal=TERM --full``. See docs/cluster.md.

Submitting again is safe: finished runs are skipped, runs whose job is queued or running (the records name
it, ``squeue`` confirms it) are left alone, failed runs are submitted again (they resume).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Dict, List, NamedTuple, Optional, Sequence, TextIO

from ..errors import ConfigError, UserError
from ..fileio import make_dirs, write_text_atomic
from .plan import Plan, Run
from .records import SuiteRecords
from .slurm_resources import SINFO_FORMAT, check_request, memory_mb, nodes_of, parse_nodes, time_limit_seconds

#: seconds before the time limit at which Slurm signals a job to checkpoint and requeue itself
DEFAULT_SIGNAL_LEAD = 120
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JOB_MODULE = "mdistiller_ddkd.cli.suite_job"


class SchedulerError(UserError):
    """Slurm is not reachable, or refused what was asked of it."""


@dataclass
class SlurmOptions:
    """Resources of every job of a suite (a suite YAML's ``slurm:`` node; command-line options override)."""

    partition: Optional[str] = None
    gpus: Optional[int] = None  #: per run; None: 1 where the cluster has GPUs, else 0
    cpus: int = 4  #: per run; the training's thread count follows it
    mem: str = "16G"  #: per run, always requested
    time: str = "24:00:00"
    account: Optional[str] = None
    qos: Optional[str] = None
    max_running: Optional[int] = None  #: cap on jobs of this suite running at once
    extra: List[str] = field(default_factory=list)  #: further ``#SBATCH`` options, e.g. ``--constraint=a100``
    signal_lead: int = DEFAULT_SIGNAL_LEAD
    max_requeues: int = 3  #: starts in a row without a new epoch before the run is stopped as failed

    @classmethod
    def from_dict(cls, data: Optional[Dict]) -> "SlurmOptions":
        """From a suite YAML's ``slurm:`` mapping; unknown keys are refused with the valid ones."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown slurm option(s) {', '.join(sorted(unknown))} in the suite file; valid: "
                              f"{', '.join(sorted(known))}")
        if "extra" in data and isinstance(data["extra"], str):
            data["extra"] = [data["extra"]]
        return cls(**data)

    def merged(self, **overrides) -> "SlurmOptions":
        """These options with the command line's (None means: not given)."""
        given = {k: v for k, v in overrides.items() if v is not None and v != []}
        if "extra" in given:
            given["extra"] = [*self.extra, *given["extra"]]
        return replace(self, **given)


def _slurm(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a Slurm client command; unreachable or failing (with ``check``) is a ``SchedulerError``."""
    if shutil.which(command[0]) is None:
        raise SchedulerError(f"no Slurm here: {command[0]} is not on PATH — run on a login node of the cluster, or "
                             f"use --dry-run to get the job scripts for another scheduler")
    proc = subprocess.run(list(command), capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise SchedulerError(f"{' '.join(command[:2])} failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc


def check_cluster(options: SlurmOptions) -> SlurmOptions:
    """Refuse what cannot work before anything is submitted (a time limit within the signal's lead time, no
    scheduler, an unknown partition, a request no node of the partition can hold: it would pend for ever);
    fill in the GPU default from the partition's nodes."""
    limit = time_limit_seconds(options.time)
    memory_mb(options.mem)  # a malformed size is refused before Slurm is asked
    if limit <= options.signal_lead:
        raise ConfigError(f"slurm time {options.time} ({limit} s) is not longer than the signal's lead time "
                          f"({options.signal_lead} s): a job would be told to stop before it starts; raise the time "
                          f"limit or lower signal_lead")
    partitions = {p.rstrip("*") for p in _slurm("sinfo", "-h", "-o", "%P").stdout.split()}
    if options.partition and options.partition not in partitions:
        raise SchedulerError(f"unknown partition {options.partition!r}; the cluster has "
                             f"{', '.join(sorted(partitions))}")
    nodes = nodes_of(parse_nodes(_slurm("sinfo", "-h", "-N", "-o", SINFO_FORMAT).stdout), options.partition)
    if options.gpus is None:
        options = replace(options, gpus=1 if any(n.gpus for n in nodes) else 0)
    partition = options.partition or (nodes[0].partition.rstrip("*") if nodes else "(default)")
    check_request(nodes, partition, options.cpus, options.mem, options.gpus, options.time)
    return options


#: squeue's states of a job Slurm still holds (pending or running)
LIVE_STATES = ("PENDING", "RUNNING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
               "RESIZING", "COMPLETING")


class LiveJob(NamedTuple):
    """A job Slurm still holds: its state and, while it waits, Slurm's reason (``Dependency``, ``Resources``,
    ``PartitionConfig``, ...)."""

    state: str
    reason: str = ""


def parse_squeue(text: str) -> Dict[str, LiveJob]:
    """``{job id: LiveJob}`` of ``squeue -h -o "%i|%T|%r"`` lines in a live state (reason ``None``: none)."""
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|", 2)
        if len(parts) >= 2 and parts[1] in LIVE_STATES:
            reason = parts[2].strip() if len(parts) == 3 else ""
            jobs[parts[0]] = LiveJob(parts[1], "" if reason in ("None", "(null)") else reason)
    return jobs


def live_jobs(job_ids: Sequence[str]) -> Dict[str, LiveJob]:
    """The given jobs that Slurm still holds as pending or running (``squeue``), with their reasons."""
    if not job_ids:
        return {}
    return parse_squeue(_slurm("squeue", "-h", "-o", "%i|%T|%r", "-j", ",".join(job_ids), check=False).stdout)


def launcher_for(options: SlurmOptions) -> List[str]:
    """The submitting Python, or torchrun with one process per GPU for runs of several GPUs."""
    if (options.gpus or 0) > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(options.gpus)]
    return [sys.executable]


def job_script(suite_root: str, run: Run, options: SlurmOptions, job_name: str, dependencies: Sequence[str],
               singleton: bool) -> str:
    """The ``sbatch`` script of ``run``: resources, requeue and signal, dependencies, then the job runner
    (which runs the training command named in the script's comment, with ``--resume`` once there is a
    checkpoint)."""
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}", f"#SBATCH --chdir={os.getcwd()}",
             f"#SBATCH --output={os.path.abspath(run.output_dir)}/slurm.log", "#SBATCH --open-mode=append",
             "#SBATCH --requeue", f"#SBATCH --signal=B:TERM@{options.signal_lead}", "#SBATCH --nodes=1",
             "#SBATCH --ntasks=1", f"#SBATCH --cpus-per-task={options.cpus}", f"#SBATCH --mem={options.mem}",
             f"#SBATCH --time={options.time}"]
    for key, value in (("partition", options.partition), ("account", options.account), ("qos", options.qos)):
        if value:
            lines.append(f"#SBATCH --{key}={value}")
    if options.gpus:
        lines.append(f"#SBATCH --gres=gpu:{options.gpus}")
    conditions = ([f"afterok:{':'.join(dependencies)}"] if dependencies else []) + (["singleton"] if singleton else [])
    if conditions:
        lines += [f"#SBATCH --dependency={','.join(conditions)}", "#SBATCH --kill-on-invalid-dep=yes"]
    lines += [f"#SBATCH {line if line.startswith('-') else '--' + line}" for line in options.extra]
    lines += ["", f"# trains: {shlex.join(run.command(launcher_for(options), resume=False))}",
              f"export OMP_NUM_THREADS={max(1, options.cpus // max(1, options.gpus or 1))}  # per process",
              "export PYTHONUNBUFFERED=1",
              f'export PYTHONPATH={shlex.quote(_PACKAGE_PARENT)}"${{PYTHONPATH:+:$PYTHONPATH}}"',
              "# exec: this Python is the batch shell, so Slurm's signals reach it directly",
              f"exec {shlex.join([sys.executable, '-m', JOB_MODULE, os.path.abspath(suite_root), run.name])}", ""]
    return "\n".join(lines)


@dataclass
class Submission:
    """What a submission did with each run: ``skipped`` (finished), ``queued`` (its job is pending or running
    already) or ``submitted``, and the job each one waits in."""

    states: Dict[str, str] = field(default_factory=dict)
    job_ids: Dict[str, str] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)


def _sbatch(script_path: str) -> str:
    out = _slurm("sbatch", "--parsable", script_path).stdout.strip()
    job_id = out.split(";")[0]
    if not job_id.isdigit():
        raise SchedulerError(f"sbatch answered {out!r} instead of a job id")
    return job_id


def _job_names(plan: Plan, options: SlurmOptions):
    """Job name per run: one of ``max_running`` names shared round-robin (``--dependency=singleton`` then lets
    one job per name run at a time), else one name per run."""
    prefix = f"ddkd-{plan.suite.name}"
    if not options.max_running:
        return lambda i, run: (f"{prefix}-{run.name}", False)
    return lambda i, run: (f"{prefix}-slot{i % options.max_running}", True)


def submit_plan(plan: Plan, options: SlurmOptions, dry_run: bool = False,
                stream: Optional[TextIO] = None) -> Submission:
    """Submit the unfinished runs of ``plan`` (``dry_run``: print their scripts instead, submit nothing)."""
    stream = stream or sys.stdout
    options = replace(options, gpus=options.gpus or 0) if dry_run else check_cluster(options)
    records = SuiteRecords(plan.root)
    if not dry_run:
        records.claim(plan)
    recorded = {run.name: records.record(run.name) for run in plan.runs}
    live = {} if dry_run else live_jobs([r.job_id for r in recorded.values() if r.job_id])
    submission, name_of = Submission(), _job_names(plan, options)
    launcher = launcher_for(options)
    for i, run in enumerate(plan.runs):
        job_id = recorded[run.name].job_id
        if run.status() == "finished":
            submission.states[run.name] = "skipped"
            continue
        if job_id in live:
            submission.states[run.name], submission.job_ids[run.name] = "queued", job_id
            continue
        dependencies = [submission.job_ids[d] for d in run.after if d in submission.job_ids]
        job_name, singleton = name_of(i, run)
        script = job_script(plan.root, run, options, job_name, dependencies, singleton)
        if dry_run:
            print(f"# ---- {run.name}: {os.path.join(plan.root, '.suite', 'jobs', run.name + '.sbatch')}", file=stream)
            print(script, file=stream)
            submission.job_ids[run.name] = f"<job of {run.name}>"
        else:
            submission.job_ids[run.name] = _submit_run(records, run, script, launcher, options)
        submission.states[run.name] = "submitted"
    return submission


def _submit_run(records: SuiteRecords, run: Run, script: str, launcher: List[str], options: SlurmOptions) -> str:
    """Write the run's job description and script into the records, ``sbatch`` it, remember the job id."""
    make_dirs(run.output_dir)  # Slurm writes the job's log there, and creates no folders
    records.write_job(run.name, {**(records.read_job(run.name) or {}), "run": run.name,
                                 "command": run.command(launcher, resume=False),
                                 "output_dir": os.path.abspath(run.output_dir), "max_requeues": options.max_requeues})
    path = os.path.join(records.dir, "jobs", f"{run.name}.sbatch")
    write_text_atomic(path, script)
    job_id = _sbatch(path)
    records.add_job_id(run.name, job_id)
    return job_id
