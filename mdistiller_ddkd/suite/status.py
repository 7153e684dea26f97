"""``ddkd-suite status``: one line per run of a suite — pending, running (epoch k/N), requeued n times, done
(accuracy), cancelled (scancel), failed (exit code and the last lines of its log) — and the totals. It reads
the run folders and the suite's records (``records.py``), and asks Slurm (``squeue``) about recorded jobs when
it is there; a cluster without accounting has no ``sacct`` and ``squeue`` forgets finished jobs, so nothing
depends on either."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass
from typing import Dict, List, Optional

from ..engine.lock import live_holder
from ..results_file import read_results
from .plan import Plan, Run, log_tail
from .records import RunRecord, SuiteRecords
from .slurm import LiveJob, live_jobs

#: the order of the states in the totals
STATES = ("done", "running", "pending", "interrupted", "cancelled", "failed", "not started")


@dataclass
class RunStatus:
    run: Run
    state: str
    detail: str = ""
    log_tail: str = ""


def _log_tail(run: Run) -> str:
    """The last lines of the run's job log (Slurm) or process log (local)."""
    for name in ("slurm.log", "suite.log"):
        tail = log_tail(os.path.join(run.output_dir, name), 5).rstrip()
        if tail:
            return tail
    return ""


def _epochs(results: Optional[dict]) -> str:
    if not results:
        return "epoch 0"
    return f"epoch {results.get('epoch', 0)}/{results.get('epochs', '?')}"


def _accuracy(results: dict) -> str:
    best, last = results.get("best_acc"), results.get("last_acc")
    return f"best {best:.2f}%" + (f", last {last:.2f}%" if isinstance(last, (int, float)) else "")


#: Slurm's reasons for a pending job that do not resolve by waiting, and what to do
STUCK_REASONS = {
    "PartitionConfig": "asks for more than the partition's nodes have: scancel it, submit with less",
    "PartitionTimeLimit": "asks for a longer time than the partition allows: scancel it, submit with a shorter --time",
    "JobHeldUser": "held: scontrol release <job>",
}


def _waiting(reason: str) -> str:
    """``Slurm reason: R (what to do), `` of a pending job, or nothing when Slurm gives none."""
    if not reason:
        return ""
    hint = STUCK_REASONS.get(reason)
    return f"Slurm reason: {reason}" + (f" ({hint})" if hint else "") + ", "


def run_status(run: Run, record: RunRecord, live: Dict[str, LiveJob]) -> RunStatus:
    """Where ``run`` stands, from its folder, its records and the jobs Slurm still holds (``live``); a pending
    job says why it waits (Slurm's reason)."""
    results = read_results(run.output_dir)
    requeued = f", requeued {record.requeues}x" if record.requeues else ""
    job = f" (job {record.job_id})" if record.job_id else ""
    if results and results.get("finished"):
        return RunStatus(run, "done", f"{_accuracy(results)}{requeued}{job}")
    job_state = live.get(record.job_id or "")
    state, last = job_state.state if job_state else None, record.last
    if state == "PENDING" or (state and state.startswith("REQUEUE")):
        return RunStatus(run, "pending", f"{_waiting(job_state.reason)}{_epochs(results)}{requeued}{job}")
    if state is not None or (not record.job_id and live_holder(run.output_dir)):
        return RunStatus(run, "running", f"{_epochs(results)}{requeued}{job}")
    if last is not None and last.cancelled:
        return RunStatus(run, "cancelled", f"{_epochs(results)}{requeued}{job}")
    if last is not None and last.code not in (None, 0):
        reason = f": {last.reason}" if last.reason else ""
        return RunStatus(run, "failed", f"exit code {last.code}{reason}, {_epochs(results)}{requeued}{job}",
                         _log_tail(run))
    if last is not None or os.path.isfile(os.path.join(run.output_dir, "latest")):
        # started, neither finished nor failing with a code: killed (e.g. at the time limit) or stopped
        what = "interrupted" if os.path.isfile(os.path.join(run.output_dir, "latest")) else "failed"
        return RunStatus(run, what, f"{_epochs(results)}{requeued}{job}", _log_tail(run) if what == "failed" else "")
    return RunStatus(run, "pending" if record.job_id else "not started", job.strip())


def suite_status(plan: Plan) -> List[RunStatus]:
    """The status of every run of ``plan``."""
    records = SuiteRecords(plan.root)
    recorded = {run.name: records.record(run.name) for run in plan.runs}
    job_ids = [r.job_id for r in recorded.values() if r.job_id]
    live = live_jobs(job_ids) if job_ids and shutil.which("squeue") else {}
    return [run_status(run, recorded[run.name], live) for run in plan.runs]


def render_status(statuses: List[RunStatus], suite_name: str) -> str:
    """One line per run (with the log's last lines under a failed one), then the totals."""
    width = len(str(len(statuses)))
    lines = []
    for i, status in enumerate(statuses, start=1):
        lines.append(f"[{i:>{width}}/{len(statuses)}] {status.state:<11} {status.run.label()}"
                     + (f"  {status.detail}" if status.detail else ""))
        if status.log_tail:
            lines += [f"      | {line}" for line in status.log_tail.splitlines()]
    counts = Counter(s.state for s in statuses)
    totals = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    lines.append(f"suite {suite_name}: {len(statuses)} runs: {totals}")
    return "\n".join(lines)
