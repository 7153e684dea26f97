"""SIGTERM / SIGINT as stop requests (``signals.py``): recorded once; a second one stops at once, unless it is
the same request delivered twice (within ``DUPLICATE_WINDOW_S``, as a scheduler signals every process of a
job)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mdistiller_ddkd import signals
from mdistiller_ddkd.signals import ImmediateStop, handle_stop_signals, stop_requested


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    for _ in range(100):  # the handler runs between bytecodes
        pass


def test_a_stop_signal_is_recorded_and_a_later_second_one_stops_at_once():
    with handle_stop_signals():
        assert stop_requested() is None
        _deliver(signal.SIGTERM)
        assert stop_requested() == signal.SIGTERM
        time.sleep(signals.DUPLICATE_WINDOW_S + 0.1)
        with pytest.raises(ImmediateStop) as err:
            _deliver(signal.SIGINT)
        assert err.value.exit_code == 130
    assert stop_requested() is None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_the_same_signal_delivered_twice_at_once_is_one_request():
    with handle_stop_signals():
        _deliver(signal.SIGTERM)
        _deliver(signal.SIGTERM)  # e.g. the job's shell passes on what Slurm also sent to every process
        assert stop_requested() == signal.SIGTERM
    assert stop_requested() is None
