"""Run a plan: ``jobs`` training processes at a time (one GPU each when there are GPUs), teachers before
the runs that need them, finished runs skipped and interrupted ones resumed; a progress line per run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, TextIO

import torch

from ..errors import disk_errors
from .job import current_epoch
from .plan import Plan, Run, read_results
from .progress import Progress
from .records import SuiteRecords

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Outcome:
    """What happened to each run: ``skipped``, ``done``, ``failed`` or ``blocked`` (a prerequisite failed)."""

    states: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    @property
    def ok(self) -> bool:
        return all(s in ("skipped", "done") for s in self.states.values())


def detect_gpus() -> List[str]:
    """GPU ids to hand out: ``CUDA_VISIBLE_DEVICES`` when set, else every visible CUDA device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no usable CUDA runtime: CPU only
        return []


def child_env(gpu: Optional[str], jobs: int) -> Dict[str, str]:
    """The environment of a training process: the package importable, its GPU, a fair share of CPU threads."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    elif jobs > 1 and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


@dataclass
class _Active:
    run: Run
    process: subprocess.Popen
    log: TextIO
    gpu: Optional[str]
    started: float
    last_epoch: int = 0


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class _Execution:
    """The state of one ``execute_plan`` call and its phases: skip what is finished, start what may
    start, watch what runs, stop everything on Ctrl-C."""

    def __init__(self, plan: Plan, jobs: int, gpus: Optional[Sequence[str]], launcher: Optional[Sequence[str]],
                 stream: TextIO, epoch_progress: bool) -> None:
        self.jobs = max(1, int(jobs))
        self.gpu_pool = list(gpus) if gpus is not None else detect_gpus()
        self.launcher, self.epoch_progress = launcher, epoch_progress
        self.progress = Progress(len(plan.runs), stream)
        self.outcome = Outcome()
        self.index = {run.name: i + 1 for i, run in enumerate(plan.runs)}
        self.pending: List[Run] = list(plan.runs)
        self.active: List[_Active] = []
        self.records = SuiteRecords(plan.root)
        self.records.claim(plan)

    def skip_finished(self) -> None:
        """Mark the runs whose folder says finished as ``skipped``."""
        for run in list(self.pending):
            if run.status() == "finished":
                self.pending.remove(run)
                self.outcome.states[run.name] = "skipped"
                self.progress.skipped(self.index[run.name], run, read_results(run.output_dir))

    def _free_gpu(self) -> Optional[str]:
        if not self.gpu_pool:
            return None
        busy = {a.gpu for a in self.active}
        free = [g for g in self.gpu_pool if g not in busy]
        return free[0] if free else self.gpu_pool[len(self.active) % len(self.gpu_pool)]

    def start_ready(self) -> None:
        """Start pending runs whose prerequisites are done, up to ``jobs`` at a time; block those whose
        prerequisites failed."""
        states = self.outcome.states
        for run in list(self.pending):
            if len(self.active) >= self.jobs:
                break
            deps = [states.get(d) for d in run.after]
            if any(d in ("failed", "blocked") for d in deps):
                self.pending.remove(run)
                states[run.name] = "blocked"
                self.progress.blocked(self.index[run.name], run,
                                      [d for d in run.after if states.get(d) not in ("done", "skipped")])
                continue
            if not all(d in ("done", "skipped") for d in deps):
                continue
            gpu = self._free_gpu()
            self.pending.remove(run)
            self.records.note(run.name, event="start", job_id=None, epoch=current_epoch(run.output_dir))
            self.active.append(_start(run, gpu, self.jobs, self.launcher))
            resumed = read_results(run.output_dir) if "--resume" in self.active[-1].process.args else None
            self.progress.started(self.index[run.name], run, gpu, resumed)

    def watch(self) -> None:
        """Report new epochs of the running processes and settle the ones that ended."""
        for item in list(self.active):
            code = item.process.poll()
            i = self.index[item.run.name]
            results = read_results(item.run.output_dir)
            if self.epoch_progress and results and results.get("epoch", 0) > item.last_epoch and code is None:
                item.last_epoch = results["epoch"]
                self.progress.epoch(i, item.run, results)
            if code is None:
                continue
            item.log.close()
            self.active.remove(item)
            elapsed = time.time() - item.started
            results = read_results(item.run.output_dir)
            self.records.note(item.run.name, event="end", job_id=None, code=code,
                              epoch=current_epoch(item.run.output_dir), requeue=False)
            if code == 0 and results and results.get("finished"):
                self.outcome.states[item.run.name] = "done"
                self.progress.finished(i, item.run, results, elapsed)
            else:
                self.outcome.states[item.run.name] = "failed"
                log_path = os.path.join(item.run.output_dir, "suite.log")
                self.progress.failed(i, item.run, code, log_path, _tail(log_path), elapsed)

    def stop_all(self) -> None:
        """Ctrl-C: interrupt the running processes (they save ``latest`` and resume later) and wait."""
        for item in self.active:
            if item.process.poll() is None:
                item.process.send_signal(signal.SIGINT if os.name != "nt" else signal.CTRL_BREAK_EVENT)
        for item in self.active:
            try:
                item.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                item.process.kill()
            item.log.close()
            self.records.note(item.run.name, event="end", job_id=None, code=item.process.wait(),
                              epoch=current_epoch(item.run.output_dir), requeue=False, reason="interrupted")
        self.progress.interrupted([a.run for a in self.active])


def execute_plan(plan: Plan, jobs: int = 1, gpus: Optional[Sequence[str]] = None,
                 launcher: Optional[Sequence[str]] = None, stream: TextIO = sys.stdout,
                 epoch_progress: bool = True, poll_seconds: float = 0.5) -> Outcome:
    """Run every unfinished run of ``plan``; returns what happened to each.

    A run waits for the runs in its ``after`` list; when one of them fails it is ``blocked``. Each
    process writes to ``<run folder>/suite.log``. Ctrl-C stops the running processes (they resume later
    from their ``latest`` checkpoint) and re-raises ``KeyboardInterrupt``.
    """
    execution = _Execution(plan, jobs, gpus, launcher, stream, epoch_progress)
    started_at = time.time()
    execution.skip_finished()
    try:
        while execution.pending or execution.active:
            execution.start_ready()
            execution.watch()
            if execution.active or execution.pending:
                time.sleep(poll_seconds)
    except KeyboardInterrupt:
        execution.stop_all()
        raise
    outcome = execution.outcome
    outcome.seconds = time.time() - started_at
    execution.progress.summary(outcome.states, outcome.seconds)
    return outcome


def _start(run: Run, gpu: Optional[str], jobs: int, launcher: Optional[Sequence[str]]) -> _Active:
    command = run.command(launcher)
    with disk_errors(f"starting the log of {run.name}"):
        os.makedirs(run.output_dir, exist_ok=True)
        log = open(os.path.join(run.output_dir, "suite.log"), "a", encoding="utf-8")
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env(gpu, jobs),
                               stdin=subprocess.DEVNULL)
    return _Active(run, process, log, gpu, time.time())
