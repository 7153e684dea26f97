"""``suite.json``: what a local suite run did — when, for how long, on what machine (:mod:`.machine`), how many
runs at a time, and per run its state, threads, GPU and seconds."""

from __future__ import annotations

import json
import os
import time

from ..fileio import write_text_atomic
from .local_scheduler import Outcome
from .machine import machine_info
from .plan import Plan

#: the file :func:`write_manifest` writes into ``<output>/<suite>/``
MANIFEST = "suite.json"


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
