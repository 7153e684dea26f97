"""What the benchmarks share: process memory readers and a device synchronisation for honest timings."""

from __future__ import annotations

import os
import resource
import sys
from typing import Optional

import torch


def current_rss_bytes() -> Optional[int]:
    """Resident set size now (Linux ``/proc/self/statm``); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously), so wall time measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
