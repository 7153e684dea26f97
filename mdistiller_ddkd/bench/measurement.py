"""What the benchmarks share: process memory readers, clocks and a device synchronisation for honest
timings, and the bytes autograd saves for backward."""

from __future__ import annotations

import os
import resource
import sys
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional, Set, Tuple

import torch

#: the clocks a step can be timed with: ``wall`` (perf_counter after a device synchronisation), ``cpu`` (this
#: process's CPU time: on a shared, loaded machine it counts only our own work), ``cuda`` (CUDA events)
CLOCKS = ("wall", "cpu", "cuda")


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


def make_clock(kind: str, device: torch.device) -> Callable[[Callable[[], None]], float]:
    """``time(fn) -> seconds`` for one call of ``fn`` with the ``kind`` of clock (``CLOCKS``)."""
    if kind == "cuda":
        if device.type != "cuda":
            raise ValueError("the cuda clock needs a CUDA device")

        def with_events(fn: Callable[[], None]) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000.0

        return with_events
    read = time.process_time if kind == "cpu" else time.perf_counter

    def with_counter(fn: Callable[[], None]) -> float:
        sync(device)
        start = read()
        fn()
        sync(device)
        return read() - start

    return with_counter


#: the environment variables that change how the C allocator hands memory to a process (glibc's tunables, a
#: preloaded allocator); recorded with every timing, since they move a CPU step's time by up to ~10 %
ALLOCATOR_ENV_PREFIXES = ("MALLOC_", "GLIBC_TUNABLES", "LD_PRELOAD")


def allocator_environment() -> Dict[str, str]:
    """The allocator-related environment variables set in this process (``ALLOCATOR_ENV_PREFIXES``)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(ALLOCATOR_ENV_PREFIXES)}


def kernel_work() -> Tuple[int, float]:
    """``(minor page faults, system CPU seconds)`` of this process so far. A CPU training step whose freed
    activations go back to the kernel faults them in again on the next step (glibc returns large blocks);
    that time is the kernel's, not arithmetic, and the step benchmark reports it per method."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_minflt, usage.ru_stime


@contextmanager
def saved_tensor_bytes(out: Dict[str, int]) -> Iterator[None]:
    """Within the block, ``out["bytes"]`` sums the distinct storages autograd saves for backward: what a
    forward pass adds to the memory a training step holds at its peak."""
    seen: Set[int] = set()
    out["bytes"] = 0

    def pack(tensor: torch.Tensor):
        try:
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if key not in seen:
                seen.add(key)
                out["bytes"] += storage.nbytes()
        except (RuntimeError, NotImplementedError):  # tensors without storage (e.g. nested, sparse)
            pass
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield
