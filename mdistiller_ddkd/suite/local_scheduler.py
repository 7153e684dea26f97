"""The local scheduler: run a plan here, ``jobs`` training processes at a time (one of the given GPUs each, else
the given CPU threads each), teachers before the runs that need them, finished runs skipped and interrupted ones
resumed; a progress line per run, and what happened (:class:`Outcome`, which ``manifest.py`` writes). The GPUs
and threads come from the caller (``machine.py`` detects them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, TextIO

from ..fileio import disk_errors
from ..results_file import read_results, results_epoch
from .plan import Plan, Run, log_tail
from .progress import Progress
from .records import SuiteRecords

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass
class Outcome:
    """What happened to each run: ``skipped``, ``done``, ``failed`` or ``blocked`` (a prerequisite failed);
    for the runs started here, their threads, GPU and seconds (``runs``); the wall time, the CPU time of the
    training processes (user + system, where the OS reports it) and the load average before and after."""

    states: Dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    runs: Dict[str, Dict] = field(default_factory=dict)
    cpu_seconds: Optional[float] = None
    load_average: Dict[str, Optional[List[float]]] = field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    @property
    def ok(self) -> bool:
        return all(s in ("skipped", "done") for s in self.states.values())


def child_env(gpu: Optional[str], threads: Optional[int]) -> Dict[str, str]:
    """The environment of a training process: the package importable, its GPU, and on the CPU its number of
    threads (``OMP_NUM_THREADS``; None leaves the inherited environment as it is)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    elif threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


@dataclass
class _Active:
    run: Run
    process: subprocess.Popen
    log: TextIO
    gpu: Optional[str]
    started: float
    threads: Optional[int] = None
    last_epoch: int = 0


class _Execution:
    """The state of one ``execute_plan`` call and its phases: skip what is finished, start what may
    start, watch what runs, stop everything on Ctrl-C."""

    def __init__(self, plan: Plan, jobs: int, gpus: Sequence[str], launcher: Optional[Sequence[str]],
                 stream: TextIO, epoch_progress: bool, threads: Optional[int] = None) -> None:
        self.jobs = max(1, int(jobs))
        self.gpu_pool = list(gpus)
        self.threads = threads
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
            results = read_results(run.output_dir)
            self.records.note(run.name, event="start", job_id=None, epoch=results_epoch(results))
            self.active.append(_start(run, gpu, None if gpu is not None else self.threads, self.launcher))
            resumed = results if "--resume" in self.active[-1].process.args else None
            self.progress.started(self.index[run.name], run, gpu, resumed)

    def watch(self) -> None:
        """Report new epochs of the running processes and settle the ones that ended; each run's results are
        read once, after its process was polled (so an ended run's are final)."""
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
            self.outcome.runs[item.run.name] = {"threads": item.threads, "gpu": item.gpu, "seconds": round(elapsed, 1)}
            self.records.note(item.run.name, event="end", job_id=None, code=code, epoch=results_epoch(results),
                              requeue=False)
            if code == 0 and results and results.get("finished"):
                self.outcome.states[item.run.name] = "done"
                self.progress.finished(i, item.run, results, elapsed)
            else:
                self.outcome.states[item.run.name] = "failed"
                log_path = os.path.join(item.run.output_dir, "suite.log")
                self.progress.failed(i, item.run, code, log_path, log_tail(log_path, 15), elapsed)

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
                              epoch=results_epoch(read_results(item.run.output_dir)), requeue=False,
                              reason="interrupted")
        self.progress.interrupted([a.run for a in self.active])


def _load_average() -> Optional[List[float]]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):  # not on this OS
        return None


def _children_cpu_seconds() -> Optional[float]:
    try:
        import resource
    except ImportError:  # not on this OS
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute_plan(plan: Plan, jobs: int = 1, gpus: Sequence[str] = (),
                 launcher: Optional[Sequence[str]] = None, stream: TextIO = sys.stdout,
                 epoch_progress: bool = True, poll_seconds: float = 0.5, threads: Optional[int] = None) -> Outcome:
    """Run every unfinished run of ``plan``; returns what happened to each.

    A run waits for the runs in its ``after`` list; when one of them fails it is ``blocked``. Each process
    writes to ``<run folder>/suite.log`` and gets one of ``gpus`` (none: the CPU), on the CPU ``threads`` threads
    (None: as the environment says; :func:`.machine.threads_per_run` shares the cores). Ctrl-C stops the running
    processes (they resume later from their ``latest`` checkpoint) and re-raises ``KeyboardInterrupt``.
    """
    execution = _Execution(plan, jobs, gpus, launcher, stream, epoch_progress, threads)
    started_at = time.time()
    cpu_before = _children_cpu_seconds()
    execution.outcome.load_average["start"] = _load_average()
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
    cpu_after = _children_cpu_seconds()
    outcome.cpu_seconds = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    outcome.load_average["end"] = _load_average()
    execution.progress.summary(outcome.states, outcome.seconds)
    return outcome


def _start(run: Run, gpu: Optional[str], threads: Optional[int], launcher: Optional[Sequence[str]]) -> _Active:
    command = run.command(launcher)
    with disk_errors(f"starting the log of {run.name}"):
        os.makedirs(run.output_dir, exist_ok=True)
        log = open(os.path.join(run.output_dir, "suite.log"), "a", encoding="utf-8")
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=child_env(gpu, threads),
                               stdin=subprocess.DEVNULL)
    return _Active(run, process, log, gpu, time.time(), threads)
