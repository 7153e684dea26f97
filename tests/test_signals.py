"""SIGTERM / SIGINT as stop requests (``signals.py``): recorded once; a second one stops at once, unless it is
the same request delivered twice (within ``DUPLICATE_WINDOW_S``, as a scheduler signals every process of a
job)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from mdistiller_ddkd import signals
from mdistiller_ddkd.errors import ImmediateStop, UserError
from mdistiller_ddkd.signals import (
    handle_stop_signals,
    on_stop_signals,
    stop_requested,
    stopped,
    stopped_by_signal,
)


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


def test_a_stop_is_no_user_error_and_its_exit_code_is_what_a_job_requeues_on():
    stop = stopped(signal.SIGTERM, "before epoch 3", "the last good checkpoint is intact")
    assert not isinstance(stop, UserError) and stop.exit_code == 128 + 15
    assert str(stop) == ("stopped by SIGTERM before epoch 3: the last good checkpoint is intact (exit code 143)")
    assert [code for code in range(256) if stopped_by_signal(code)] == [128 + 2, 128 + 15]
    assert signals.signal_name(99) == "signal 99"


def test_on_stop_signals_passes_both_signals_to_the_handler_and_restores_the_previous_ones():
    received, before = [], (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))
    with on_stop_signals(lambda signum, frame: received.append(signum)):
        _deliver(signal.SIGTERM)
        _deliver(signal.SIGINT)
    assert received == [signal.SIGTERM, signal.SIGINT]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
