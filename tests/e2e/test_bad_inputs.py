"""Real processes: a malicious checkpoint is one line (exit 2) and never runs code; a second run into a
folder that a live run holds refuses, naming the holder's PID; Ctrl-C (SIGINT) from outside stops the
holder after a checkpoint with one line (exit 130), and --resume finishes the run. (The other bad inputs
are checked in process, in tests/test_reliability.py and tests/test_safe_loading.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import torch

from tests.helpers import (
    FAULT_PLUGIN,
    REPO_ROOT,
    TRAIN,
    Payload,
    run_cli,
    run_folder,
    subprocess_env,
    synthetic_overrides,
)


def test_malicious_teacher_checkpoint_is_one_line_and_never_runs_code(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    ckpt = tmp_path / "teacher.pth"
    torch.save({"model": Payload(marker)}, ckpt)
    proc = run_cli([TRAIN, *synthetic_overrides(str(tmp_path), str(ckpt), 0)], cwd=str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: checkpoint ")
    assert "refused unread" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and not os.path.exists(run_folder(str(tmp_path)))


def test_second_run_is_refused_and_ctrl_c_stops_the_first_after_a_checkpoint(tmp_path):
    from tests.helpers import write_teacher_checkpoint

    prefix = str(tmp_path)
    teacher = write_teacher_checkpoint(str(tmp_path / "t.pth"), "resnet8", num_classes=10)
    # the first run freezes itself (SIGSTOP) after step 2 of epoch 1, holding the folder
    first = subprocess.Popen([sys.executable, TRAIN, *FAULT_PLUGIN, *synthetic_overrides(prefix, teacher, 2, epochs=2)],
                             cwd=REPO_ROOT,
                             env=dict(subprocess_env(), DDKD_FAULT="signal:1:2:STOP"), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
        second = run_cli([TRAIN, *synthetic_overrides(prefix, teacher, 0, epochs=2)], cwd=REPO_ROOT)
        assert second.returncode == 2 and second.stderr.count("\n") == 1
        assert f"being written by another run (pid {first.pid} " in second.stderr
        os.kill(first.pid, signal.SIGINT)  # Ctrl-C, delivered when it continues
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 130, err[-2000:]
    assert err.count("\n") == 1 and "stopped by SIGINT in epoch 1 after step 2" in err and "Traceback" not in err
    latest = torch.load(os.path.join(run_folder(prefix), "latest"), weights_only=True)
    assert latest["partial"] == {"epoch": 1, "step": 2}
    proc = run_cli([TRAIN, "--resume", *synthetic_overrides(prefix, teacher, 2, epochs=2)], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.load(open(os.path.join(run_folder(prefix), "results.json")))
    assert results["finished"] and [r["epoch"] for r in results["history"]] == [1, 2]
