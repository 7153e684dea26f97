"""A suite's own records, in ``<output>/<suite>/.suite/``: what each run is (its command, so a folder is never
reused by a different suite definition), the scheduler jobs submitted for it, and every attempt to run it
(start, end, exit code, requeue). Run folders say how far training got; these records say what happened to
the processes. Both executors write them; ``ddkd-suite status`` reads them."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import ConfigError
from ..fileio import append_line, make_dirs, write_text_atomic
from .plan import Plan, Run

RECORDS_DIR = ".suite"


def run_identity(run: Run) -> List[str]:
    """What makes a run this run: its training command without the Python, the launcher and ``--resume``."""
    command = run.command(launcher=["python"], resume=False)
    return command[1:]


@dataclass
class Attempt:
    """One process (local) or one job start (Slurm) of a run, and how it ended (``code`` None: running, or
    killed without a word)."""

    job_id: Optional[str]
    start_epoch: int
    code: Optional[int] = None
    end_epoch: Optional[int] = None
    requeued: bool = False
    cancelled: bool = False  #: the job was cancelled (``scancel``) and stopped after writing its checkpoint
    reason: str = ""


@dataclass
class RunRecord:
    """What the records hold for one run."""

    job_ids: List[str] = field(default_factory=list)
    attempts: List[Attempt] = field(default_factory=list)

    @property
    def job_id(self) -> Optional[str]:
        return self.job_ids[-1] if self.job_ids else None

    @property
    def requeues(self) -> int:
        return sum(1 for a in self.attempts if a.requeued)

    @property
    def last(self) -> Optional[Attempt]:
        return self.attempts[-1] if self.attempts else None

    def starts_without_progress(self, epoch: int) -> int:
        """How many attempts in a row, up to now, started at ``epoch`` (the run made no new epoch since)."""
        count = 0
        for attempt in reversed(self.attempts):
            if attempt.start_epoch != epoch:
                break
            count += 1
        return count


class SuiteRecords:
    """The records of the suite whose output folder is ``root`` (``<output>/<suite name>``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, RECORDS_DIR)

    def _path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def _read_json(self, *parts: str, default=None):
        try:
            with open(self._path(*parts), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return default

    # ------------------------------------------------------------------ the suite's definition
    def claim(self, plan: Plan) -> None:
        """Record which command each run of ``plan`` is; refuse (``ConfigError``) when the folder holds a run
        of the same name with another command — a different suite definition wrote it."""
        known: Dict[str, List[str]] = self._read_json("definition.json", default={}) or {}
        changed = [run.name for run in plan.runs if run.name in known and known[run.name] != run_identity(run)]
        if changed:
            raise ConfigError(
                f"{self.root} was written by a different definition of suite {plan.suite.name!r}: run(s) "
                f"{', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''} had other commands (config, overrides "
                f"or plugins); use another --output, or the suite definition that wrote it")
        merged = {**known, **{run.name: run_identity(run) for run in plan.runs}}
        if merged != known:
            make_dirs(self.dir)
            write_text_atomic(self._path("definition.json"), json.dumps(merged, indent=1, sort_keys=True))

    # ------------------------------------------------------------------ jobs and attempts
    def write_job(self, run_name: str, data: Dict) -> None:
        """The job description a scheduler job of ``run_name`` reads when it starts (``suite/slurm_job.py``)."""
        make_dirs(self._path("jobs"))
        write_text_atomic(self._path("jobs", f"{run_name}.json"), json.dumps(data, indent=1))

    def read_job(self, run_name: str) -> Optional[Dict]:
        return self._read_json("jobs", f"{run_name}.json")

    def add_job_id(self, run_name: str, job_id: str) -> None:
        """Remember that job ``job_id`` was submitted for ``run_name``."""
        data = self.read_job(run_name) or {}
        data["job_ids"] = [*data.get("job_ids", []), job_id]
        data["submitted"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        self.write_job(run_name, data)

    def note(self, run_name: str, **event) -> None:
        """Append one attempt event (``start`` / ``end``) of ``run_name``."""
        make_dirs(self._path("attempts"))
        event.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S"))
        append_line(self._path("attempts", f"{run_name}.jsonl"), json.dumps(event, sort_keys=True))

    def record(self, run_name: str) -> RunRecord:
        """Everything recorded of ``run_name``."""
        job = self.read_job(run_name) or {}
        record = RunRecord(job_ids=[str(j) for j in job.get("job_ids", [])])
        try:
            with open(self._path("attempts", f"{run_name}.jsonl"), encoding="utf-8") as f:
                events = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            events = []
        for event in events:
            if event.get("event") == "start":
                record.attempts.append(Attempt(event.get("job_id"), int(event.get("epoch", 0))))
            elif event.get("event") == "end" and record.attempts:
                last = record.attempts[-1]
                last.code, last.end_epoch = event.get("code"), event.get("epoch")
                last.requeued, last.reason = bool(event.get("requeue")), str(event.get("reason", ""))
                last.cancelled = bool(event.get("cancelled"))
        return record
