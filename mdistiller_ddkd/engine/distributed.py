"""The distributed runtime: device selection and torch.distributed, so the same code runs on CPU, one GPU,
and many GPUs under torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List

import torch

from ..errors import ConfigError
from ..rng import seed_everything

__all__ = ["DEVICE_CHOICES", "Runtime", "all_reduce_sum", "gather_objects", "init_runtime", "seed_everything",
           "select_device", "shutdown_runtime"]

#: the valid values of ``SOLVER.DEVICE``
DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` → CUDA when present, else CPU; ``cuda`` without a GPU is an error that says so."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("SOLVER.DEVICE is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
        return torch.device("cuda", local_rank)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"SOLVER.DEVICE {name!r} is not one of {', '.join(DEVICE_CHOICES)}")


def init_runtime(device_name: str) -> Runtime:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1); pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Runtime(device=select_device(device_name))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = select_device(device_name, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Runtime(device=device, rank=rank, world_size=world_size, local_rank=local_rank)


def shutdown_runtime(runtime: Runtime) -> None:
    if runtime.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Sum a tensor over ranks (identity when not distributed)."""
    if runtime.distributed:
        values = values.clone()
        torch.distributed.all_reduce(values, op=torch.distributed.ReduceOp.SUM)
    return values


def gather_objects(obj, runtime: Runtime) -> List:
    """``[obj of rank 0, obj of rank 1, ...]`` (``[obj]`` when not distributed)."""
    if not runtime.distributed:
        return [obj]
    out: List = [None] * runtime.world_size
    torch.distributed.all_gather_object(out, obj)
    return out
