"""One writer per output folder (``engine/lock.py``): a live holder is named, a dead one's lock is taken
over."""

from __future__ import annotations

import os

import pytest

from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.engine.lock import OutputLock
from tests.helpers import call_cli


def cli(capsys, *args, main=train_main):
    return call_cli(capsys, main, *args)


def test_a_live_holder_is_named_and_a_dead_one_is_taken_over(tmp_path):
    import subprocess
    import sys

    from mdistiller_ddkd.errors import OutputInUseError
    from tests.helpers import REPO_ROOT

    code = ("import sys, time; from mdistiller_ddkd.engine.lock import OutputLock; "
            "lock = OutputLock(sys.argv[1]).acquire(); "
            "print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputInUseError, match=f"pid {holder.pid} "):
            OutputLock(str(tmp_path)).acquire()
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(tmp_path / ".lock")  # left behind by the killed holder: stale
    with OutputLock(str(tmp_path)) as lock:
        assert f"pid {os.getpid()} " in open(lock.path).read()
    assert not os.path.exists(tmp_path / ".lock")
