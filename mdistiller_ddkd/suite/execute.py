"""Run a plan: ``jobs`` training processes at a time (one GPU each when there are GPUs, else a share of the
CPU cores each), teachers before the runs that need them, finished runs skipped and interrupted ones
resumed; a progress line per run, and ``suite.json`` (:func:`write_manifest`): how long it took, on what."""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, TextIO, Tuple

import torch

from ..fileio import disk_errors, write_text_atomic
from .job import current_epoch
from .plan import Plan, Run, log_tail, read_results
from .progress import Progress
from .records import SuiteRecords

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


#: the file :func:`write_manifest` writes into ``<output>/<suite>/``
MANIFEST = "suite.json"


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


def detect_gpus() -> List[str]:
    """GPU ids to hand out: ``CUDA_VISIBLE_DEVICES`` when set, else every visible CUDA device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    try:
        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no usable CUDA runtime: CPU only
        return []


def available_cores() -> int:
    """CPU cores this process may use (its affinity where the OS tells, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def env_threads() -> Optional[int]:
    """``OMP_NUM_THREADS`` when set to a positive integer, else None."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def threads_per_run(jobs: int, threads: Optional[int] = None) -> int:
    """Intra-op threads of each CPU training process: ``threads`` when given, else ``OMP_NUM_THREADS`` when
    set, else the available cores shared by the ``jobs`` runs at a time (at least 1)."""
    return threads or env_threads() or max(1, available_cores() // max(1, jobs))


def jobs_and_threads(suite_jobs: int, jobs: Optional[int], threads: Optional[int],
                     gpus: Optional[Sequence[str]] = None) -> Tuple[int, Optional[int]]:
    """``(runs at a time, CPU threads per run or None on GPUs)``. Without ``jobs`` the suite's own number,
    lowered so that jobs x threads fit the cores when the threads are given (``--threads`` or
    ``OMP_NUM_THREADS``): ``OMP_NUM_THREADS=2 ddkd-suite demo`` runs one 2-thread run at a time on 2 cores."""
    on_gpus = bool(gpus if gpus is not None else detect_gpus())
    given = threads or env_threads()
    if jobs is None:
        jobs = suite_jobs if on_gpus or given is None else max(1, min(suite_jobs, available_cores() // given))
    return jobs, None if on_gpus else threads_per_run(jobs, threads)


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

    def __init__(self, plan: Plan, jobs: int, gpus: Optional[Sequence[str]], launcher: Optional[Sequence[str]],
                 stream: TextIO, epoch_progress: bool, threads: Optional[int] = None) -> None:
        self.jobs = max(1, int(jobs))
        self.gpu_pool = list(gpus) if gpus is not None else detect_gpus()
        self.threads = threads_per_run(self.jobs, threads)
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
            self.active.append(_start(run, gpu, None if gpu is not None else self.threads, self.launcher))
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
            self.outcome.runs[item.run.name] = {"threads": item.threads, "gpu": item.gpu, "seconds": round(elapsed, 1)}
            results = read_results(item.run.output_dir)
            self.records.note(item.run.name, event="end", job_id=None, code=code,
                              epoch=current_epoch(item.run.output_dir), requeue=False)
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
                              epoch=current_epoch(item.run.output_dir), requeue=False, reason="interrupted")
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


def execute_plan(plan: Plan, jobs: int = 1, gpus: Optional[Sequence[str]] = None,
                 launcher: Optional[Sequence[str]] = None, stream: TextIO = sys.stdout,
                 epoch_progress: bool = True, poll_seconds: float = 0.5, threads: Optional[int] = None) -> Outcome:
    """Run every unfinished run of ``plan``; returns what happened to each.

    A run waits for the runs in its ``after`` list; when one of them fails it is ``blocked``. Each
    process writes to ``<run folder>/suite.log``. On the CPU each process gets :func:`threads_per_run`
    threads. Ctrl-C stops the running processes (they resume later from their ``latest`` checkpoint) and
    re-raises ``KeyboardInterrupt``.
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


def machine_info() -> Dict[str, object]:
    """What the runs ran on: CPU model, available cores, OS, Python and PyTorch versions, GPUs."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info: Dict[str, object] = {"cpu": cpu, "cores": available_cores(), "os": platform.platform(terse=True),
                               "python": platform.python_version()}
    info["torch"] = torch.__version__
    try:
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # a broken CUDA runtime: the manifest says less
        pass
    return info


def write_manifest(plan: Plan, outcome: Outcome, jobs: int) -> str:
    """Write ``<output>/<suite>/suite.json``: when the suite ran, for how long, on what machine, how many runs
    at a time, and per run its state, threads, GPU and seconds. Returns its path."""
    root = os.path.dirname(plan.runs[0].output_dir) if plan.runs else "."
    manifest = {
        "suite": plan.suite.name,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(outcome.seconds, 1),
        "cpu_seconds": None if outcome.cpu_seconds is None else round(outcome.cpu_seconds, 1),
        "load_average": outcome.load_average,
        "jobs": jobs,
        "machine": machine_info(),
        "runs": {run.name: {"state": outcome.states.get(run.name), **outcome.runs.get(run.name, {})}
                 for run in plan.runs},
    }
    path = os.path.join(root, MANIFEST)
    write_text_atomic(path, json.dumps(manifest, indent=1))
    return path


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
