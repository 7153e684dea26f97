"""A run folder's ``results.json`` (written by ``engine/run_folder.py``): its name and its one reader, which the
table, the suite's plan, scheduler, Slurm job and status, and the figures all use."""

from __future__ import annotations

import json
import os
from typing import Optional

#: the file a run folder holds its identity, accuracies and every epoch's record in
RESULTS = "results.json"


def read_results(run_dir: str) -> Optional[dict]:
    """``results.json`` of a run folder, or None when absent or unreadable (being rewritten, or damaged)."""
    try:
        with open(os.path.join(run_dir, RESULTS), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def results_epoch(results: Optional[dict]) -> int:
    """The last epoch ``results`` records (0 before the first, or without results)."""
    return int((results or {}).get("epoch", 0))
