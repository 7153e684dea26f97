"""``SOLVER.DETERMINISTIC``: the same arithmetic on every run of a config (cuDNN deterministic and not
benchmarked, torch's deterministic algorithms, cuBLAS's fixed workspace, set before CUDA starts), and the
provenance results.json records so that a reader knows what a number was computed with."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

import torch

from ..errors import ConfigError

#: cuBLAS is deterministic only with one of these workspace configurations, read when CUDA starts
CUBLAS_WORKSPACE_VARIABLE = "CUBLAS_WORKSPACE_CONFIG"
DETERMINISTIC_CUBLAS_WORKSPACES = (":4096:8", ":16:8")


def _check_cublas_workspace() -> None:
    """Set cuBLAS's workspace variable, or refuse where it can no longer take effect or holds another value."""
    value = os.environ.get(CUBLAS_WORKSPACE_VARIABLE)
    if value is None:
        if torch.cuda.is_initialized():
            raise ConfigError(f"SOLVER.DETERMINISTIC True needs {CUBLAS_WORKSPACE_VARIABLE} set before CUDA starts, "
                              f"and CUDA has started in this process already; run with "
                              f"{CUBLAS_WORKSPACE_VARIABLE}={DETERMINISTIC_CUBLAS_WORKSPACES[0]} in the environment")
        os.environ[CUBLAS_WORKSPACE_VARIABLE] = DETERMINISTIC_CUBLAS_WORKSPACES[0]
    elif value not in DETERMINISTIC_CUBLAS_WORKSPACES:
        raise ConfigError(f"SOLVER.DETERMINISTIC True: {CUBLAS_WORKSPACE_VARIABLE}={value!r} leaves cuBLAS "
                          f"non-deterministic; set it to {' or '.join(DETERMINISTIC_CUBLAS_WORKSPACES)}, or unset it")


def apply_determinism(deterministic: bool) -> None:
    """Switch deterministic arithmetic on (or back off) for this process; call before CUDA starts. On,
    an operation without a deterministic implementation stops the run instead of computing differently."""
    if deterministic:
        _check_cublas_workspace()
        torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic)


_NO_DETERMINISTIC_IMPLEMENTATION = re.compile(r"^(\S+) does not have a deterministic implementation")


@contextmanager
def refusing_nondeterministic_operations() -> Iterator[None]:
    """Turn torch's error for an operation without a deterministic implementation (under
    ``SOLVER.DETERMINISTIC True``) into one line naming the operation (``ConfigError``, exit 2)."""
    try:
        yield
    except RuntimeError as err:
        match = _NO_DETERMINISTIC_IMPLEMENTATION.match(str(err))
        if match is None:
            raise
        raise ConfigError(f"SOLVER.DETERMINISTIC True: {match.group(1)} has no deterministic implementation on this "
                          f"device, so this run cannot be deterministic; turn SOLVER.DETERMINISTIC off") from None


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model (``/proc/cpuinfo``; elsewhere what ``platform`` knows)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@functools.lru_cache(maxsize=None)
def source_hash() -> str:
    """SHA-256 of the package's Python sources (relative paths and bytes, in sorted order): which code computed
    a result, comparable across checkouts and installs of the same code."""
    digest = hashlib.sha256()
    paths = sorted(os.path.relpath(os.path.join(folder, name), _PACKAGE_DIR).replace(os.sep, "/")
                   for folder, _, names in os.walk(_PACKAGE_DIR) for name in names if name.endswith(".py"))
    for path in paths:
        with open(os.path.join(_PACKAGE_DIR, path), "rb") as f:
            digest.update(path.encode() + b"\0" + f.read() + b"\0")
    return digest.hexdigest()


def run_provenance(deterministic: bool, device: torch.device) -> Dict[str, Optional[object]]:
    """What a run's numbers were computed with (beside the seed, which results.json holds already):
    ``SOLVER.DETERMINISTIC``, library versions (CUDA and cuDNN: null unless the run computes on a GPU), the
    device, torch's CPU threads (they change the order of CPU reductions) and the package's ``source_hash``."""
    on_gpu = device.type == "cuda"
    return {
        "deterministic": deterministic, "torch": torch.__version__,
        "cuda": torch.version.cuda if on_gpu else None,
        "cudnn": torch.backends.cudnn.version() if on_gpu and torch.backends.cudnn.is_available() else None,
        "device": device_name(device), "threads": torch.get_num_threads(), "sources": source_hash(),
    }
