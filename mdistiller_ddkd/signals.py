"""SIGTERM / SIGINT as a request to stop cleanly: the trainer finishes its step, writes a checkpoint that
``--resume`` continues from exactly, prints one line and exits with ``128 + signal`` (143 / 130), so a
scheduler can requeue the job. A second signal stops at once (``ImmediateStop``), unless it comes within
``DUPLICATE_WINDOW_S`` of the first (the same request, delivered to every process of a job).

``handle_stop_signals()`` installs the handlers (main thread only; ``ddkd-train`` does it); the trainer asks
``stop_requested()`` after every step. Without the handlers installed nothing changes.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

from .errors import ImmediateStop, signal_name, stop_exit_code

#: the signals that ask for a clean stop
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

__all__ = ["ImmediateStop", "STOP_SIGNALS", "handle_stop_signals", "ignore_stop_signals", "request_stop",
           "signal_name", "stop_exit_code", "stop_requested"]


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
                raise ImmediateStop(signum)
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
def handle_stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT request a clean stop (the previous handlers come back after)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous: Dict[int, object] = {}
    _REQUEST.signum = None
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _REQUEST.handle)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _REQUEST.signum = None


def ignore_stop_signals() -> None:
    """For DataLoader workers: the main process decides when to stop (a worker killed by the terminal's
    SIGINT or a scheduler's SIGTERM would otherwise break the batch in flight)."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
