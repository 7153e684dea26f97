"""SIGTERM / SIGINT as a request to stop cleanly: the trainer finishes its step, writes a checkpoint that
``--resume`` continues from exactly, prints one line and exits with ``128 + signal`` (143 / 130), so a
scheduler can requeue the job. A second signal stops at once (``ImmediateStop``), unless it comes within
``DUPLICATE_WINDOW_S`` of the first (the same request, delivered to every process of a job).

``handle_stop_signals()`` installs the handlers (main thread only; ``ddkd-train`` does it); the trainer asks
``stop_requested()`` after every step. Without the handlers installed nothing changes. The Slurm job that
runs a training passes the same signals on to it (``on_stop_signals``) and requeues it when it ended by one
(``stopped_by_signal``); ``stopped`` is the exception a training ends with then.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional

from .errors import ImmediateStop, Stopped

#: the signals that ask for a clean stop
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

__all__ = ["STOP_SIGNALS", "handle_stop_signals", "ignore_stop_signals", "on_stop_signals", "request_stop",
           "signal_name", "stop_exit_code", "stop_requested", "stopped", "stopped_by_signal"]


def stop_exit_code(signum: int) -> int:
    """``128 + signum``: what a shell reports for a process ended by that signal (SIGTERM 143, SIGINT 130)."""
    return 128 + int(signum)


def stopped_by_signal(exit_code: int) -> bool:
    """True for the exit code of a training stopped by a stop signal after its checkpoint (130, 143)."""
    return exit_code in {stop_exit_code(s) for s in STOP_SIGNALS}


def signal_name(signum: int) -> str:
    """``SIGTERM`` for 15, ``signal 99`` for a number Python does not name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def stopped(signum: int, where: str, state: str) -> Stopped:
    """What a training raises after a stop by ``signum`` ``where`` (e.g. "before epoch 3"), once ``state`` (what
    its folder holds and how to continue) is on disk."""
    return Stopped(f"stopped by {signal_name(signum)} {where}: {state} (exit code {stop_exit_code(signum)})",
                   stop_exit_code(signum))


#: a second stop signal this soon after the first is the same request delivered twice (a scheduler signals
#: the job's shell and every process of the job), not a request to stop at once
DUPLICATE_WINDOW_S = 1.0


class _StopRequest:
    def __init__(self) -> None:
        self.signum: Optional[int] = None
        self.at = 0.0

    def handle(self, signum: int, frame) -> None:
        if self.signum is not None:
            if time.monotonic() - self.at > DUPLICATE_WINDOW_S:
                raise ImmediateStop(f"stopped at once by a second {signal_name(signum)}: the step in progress is "
                                    f"lost; files already written are intact (--resume continues from the last "
                                    f"checkpoint)", stop_exit_code(signum))
            return
        self.signum, self.at = signum, time.monotonic()


_REQUEST = _StopRequest()


def stop_requested() -> Optional[int]:
    """The signal number received since the handlers were installed, or None."""
    return _REQUEST.signum


def request_stop(signum: int) -> None:
    """Record a stop request as the handler does (tests; embedding applications)."""
    _REQUEST.signum = signum


@contextmanager
def on_stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Within the block, ``handler(signum, frame)`` receives SIGTERM and SIGINT (the previous handlers come back
    after); outside the main thread, where handlers cannot be set, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: Dict[int, object] = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handler)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextmanager
def handle_stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT request a clean stop (``stop_requested``)."""
    _REQUEST.signum = None
    try:
        with on_stop_signals(_REQUEST.handle):
            yield
    finally:
        _REQUEST.signum = None


def ignore_stop_signals() -> None:
    """For DataLoader workers: the main process decides when to stop (a worker killed by the terminal's
    SIGINT or a scheduler's SIGTERM would otherwise break the batch in flight)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
