"""The stop protocol: on SIGTERM / SIGINT (``signals.py``) every rank finishes its step; inside an epoch a
mid-epoch ``latest`` is written, between epochs the last commit stands; then ``Stopped`` ends the run with
exit code ``128 + signal`` (``signals.stopped``), and ``--resume`` continues exactly where it stopped."""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..signals import stop_requested, stopped
from .distributed import Runtime
from .state import RunProgress


def agreed_stop_signal(runtime: Runtime, device: torch.device) -> Optional[int]:
    """The stop signal received by any rank (all ranks agree, so they stop at the same step), or None."""
    signum = stop_requested() or 0
    if runtime.distributed:
        flag = torch.tensor([signum], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        signum = int(flag.item())
    return signum or None


def stop_inside_epoch(runtime: Runtime, device: torch.device, progress: RunProgress, epoch: int, next_step: int,
                      steps_per_epoch: int, save_partial: Callable[[], None], latest_path: str) -> None:
    """After a step: on a stop request, ``save_partial()`` (a mid-epoch ``latest``, on every rank) and raise
    ``Stopped``. After the epoch's last step validation and the commit come first, and the stop is taken
    between epochs."""
    if next_step >= steps_per_epoch:
        return
    signum = agreed_stop_signal(runtime, device)
    if signum is None:
        return
    save_partial()
    progress.latest_holds = f"epoch {progress.committed_epoch}, then epoch {epoch} up to step {next_step}"
    raise stopped(signum, f"in epoch {epoch} after step {next_step} of {steps_per_epoch}",
                  f"{latest_path} holds this point; --resume continues exactly from it")


def stop_between_epochs(runtime: Runtime, device: torch.device, progress: RunProgress, next_epoch: int,
                        output_dir: str) -> None:
    """Before ``next_epoch``: on a stop request, raise ``Stopped`` (the last committed epoch stands)."""
    signum = agreed_stop_signal(runtime, device)
    if signum is not None:
        raise stopped(signum, f"before epoch {next_epoch}",
                      f"{progress.describe_latest(output_dir)}; {progress.how_to_continue()}")
