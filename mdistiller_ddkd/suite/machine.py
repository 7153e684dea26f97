"""What this machine offers a suite and how its runs share it: the GPUs to hand out, the CPU cores and threads
per run, and the machine's description for ``suite.json``. The local scheduler is given these; it detects
nothing itself."""

from __future__ import annotations

import os
import platform
from typing import Dict, List, Optional, Sequence, Tuple

import torch


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


