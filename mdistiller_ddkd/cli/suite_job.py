"""``python -m mdistiller_ddkd.cli.suite_job SUITE_FOLDER RUN_NAME``: what a suite's Slurm job runs
(``suite/slurm_job.py``); not meant to be called by hand."""

from __future__ import annotations

import sys
from typing import List, Optional

from ..suite.slurm_job import main as job_main
from .runner import run_main


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(job_main, argv)


if __name__ == "__main__":
    sys.exit(main())
