"""Executors: what gets a suite's planned runs done. One plan (``plan.py``), two ways behind one small
interface — here and now (``LocalExecutor``: processes, ``--jobs`` at a time, then the table), or by Slurm
(``SlurmExecutor``: one job per run, then ``ddkd-suite status`` / ``report`` as the jobs finish)."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from typing import List, Optional, Sequence, TextIO

from .local_scheduler import execute_plan
from .machine import detect_gpus, threads_per_run
from .manifest import write_manifest
from .plan import Plan, shell_command
from .slurm import SlurmOptions, submit_plan


class Executor(ABC):
    """Runs (or submits) the unfinished runs of a plan; finished runs are skipped, interrupted ones resumed."""

    @abstractmethod
    def dry_run(self, plan: Plan, stream: Optional[TextIO] = None) -> None:
        """Print what would be run or submitted; do nothing."""

    @abstractmethod
    def execute(self, plan: Plan, stream: Optional[TextIO] = None) -> bool:
        """Do it; True when every run is done (local) or on its way (Slurm)."""


class LocalExecutor(Executor):
    """Training processes on this machine, ``jobs`` at a time (one GPU each when there are GPUs: ``gpus``, else
    every visible one); on the CPU ``threads`` each (else :func:`.machine.threads_per_run`)."""

    def __init__(self, jobs: int = 1, gpus: Optional[Sequence[str]] = None, launcher: Optional[List[str]] = None,
                 epoch_progress: bool = True, threads: Optional[int] = None) -> None:
        self.jobs, self.launcher, self.epoch_progress = jobs, launcher, epoch_progress
        self.gpus = list(gpus) if gpus is not None else detect_gpus()
        self.threads = None if self.gpus else threads_per_run(jobs, threads)

    def dry_run(self, plan: Plan, stream: Optional[TextIO] = None) -> None:
        """One shell line per run (teachers first, in stages when the suite trains them), then the (method,
        pair) left out as ``#`` comments."""
        stream = stream or sys.stdout
        staged = any(run.after for run in plan.runs)
        header = None
        for run in plan.runs:
            stage = "# 2) after the teachers above have finished:" if run.after else "# 1) first:"
            if staged and stage != header:
                print(stage, file=stream)
                header = stage
            print(shell_command(run, self.launcher), file=stream)
        for line in plan.not_runnable_lines():
            print(line, file=stream)

    def execute(self, plan: Plan, stream: Optional[TextIO] = None) -> bool:
        stream = stream or sys.stdout
        outcome = execute_plan(plan, jobs=self.jobs, gpus=self.gpus, launcher=self.launcher, stream=stream,
                               epoch_progress=self.epoch_progress, threads=self.threads)
        write_manifest(plan, outcome, self.jobs)
        return outcome.ok


class SlurmExecutor(Executor):
    """One ``sbatch`` job per unfinished run (``slurm.py``); returns once they are submitted."""

    def __init__(self, options: SlurmOptions) -> None:
        self.options = options

    def dry_run(self, plan: Plan, stream: Optional[TextIO] = None) -> None:
        stream = stream or sys.stdout
        submit_plan(plan, self.options, dry_run=True, stream=stream)
        for line in plan.not_runnable_lines():
            print(line, file=stream)

    def execute(self, plan: Plan, stream: Optional[TextIO] = None) -> bool:
        stream = stream or sys.stdout
        submission = submit_plan(plan, self.options, stream=stream)
        width = len(str(len(plan.runs)))
        for i, run in enumerate(plan.runs, start=1):
            state, job = submission.states[run.name], submission.job_ids.get(run.name)
            after = [submission.job_ids[d] for d in run.after if d in submission.job_ids]
            detail = {"skipped": "finished already", "queued": f"job {job} is queued or running already",
                      "submitted": f"job {job}" + (f", after job {', '.join(after)}" if after else "")}[state]
            print(f"[{i:>{width}}/{len(plan.runs)}] {state:<9} {run.label()}  {detail}", file=stream, flush=True)
        print(f"suite {plan.suite.name}: {submission.count('submitted')} job(s) submitted, "
              f"{submission.count('queued')} already queued, {submission.count('skipped')} finished",
              file=stream, flush=True)
        return True
