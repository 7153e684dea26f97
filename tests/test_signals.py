"""SIGTERM / SIGINT as stop requests (``signals.py``): recorded once, a second one stops at once."""

from __future__ import annotations

import os
import signal

import pytest

from mdistiller_ddkd.cli.train import main as train_main
from tests.helpers import call_cli


def cli(capsys, *args, main=train_main):
    return call_cli(capsys, main, *args)


def test_a_stop_signal_is_recorded_and_a_second_one_stops_at_once():
    from mdistiller_ddkd.signals import ImmediateStop, handle_stop_signals, stop_requested

    with handle_stop_signals():
        assert stop_requested() is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_requested() == signal.SIGTERM
        with pytest.raises(ImmediateStop) as err:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(100):  # the handler runs between bytecodes
                pass
        assert err.value.exit_code == 130
    assert stop_requested() is None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
