"""A test plugin (``--plugins tests.e2e.fault_plugin``) that kills or signals the training process at exact
moments, chosen by ``$DDKD_FAULT`` (comma-separated):

* ``signal:E:S:NAME`` — after step S (1-based) of epoch E, send signal NAME (KILL, TERM, INT) to itself;
* ``in-save:FILE:E`` — while saving checkpoint FILE (``latest``, ``student_latest``, ...) of epoch E: write
  the temporary file completely, then SIGKILL before the rename;
* ``after-save:FILE:E`` — SIGKILL right after FILE of epoch E is renamed into place (before anything else);
* ``pause:E:S`` — after step S of epoch E, wait (up to 120 s) until a stop signal has arrived, so that a test
  can signal a training at a known moment however slow the machine is;
* ``fill:E:S`` — after step S of epoch E, fill the file system of ``$DDKD_FILL_DIR`` (a small tmpfs) to the
  last byte with ``$DDKD_FILL_DIR/filler``, so the next write meets a real ``ENOSPC``;
* ``fill-after-save:FILE:E`` — the same, right after checkpoint FILE of epoch E is renamed into place;
* ``fill-after-text:FILE`` — the same, right after the text file FILE (``results.json``, ``worklog.txt``) is
  first written.

Only the tests use it; it relies on the trainer's hooks and on ``run_folder``'s use of
``save_checkpoint_atomic``.
"""

from __future__ import annotations

import errno
import os
import signal
import time

import torch

from mdistiller_ddkd import fileio
from mdistiller_ddkd.engine import run_folder
from mdistiller_ddkd.engine.hooks import TrainerHook, register_hook
from mdistiller_ddkd.signals import stop_requested

ENV = "DDKD_FAULT"
FILL_DIR_ENV = "DDKD_FILL_DIR"


def _actions():
    return [a.split(":") for a in os.environ.get(ENV, "").split(",") if a]


def _die(signum=signal.SIGKILL) -> None:
    os.kill(os.getpid(), signum)


def fill_disk() -> None:
    """Write zeros into ``$DDKD_FILL_DIR/filler`` until the file system refuses (a real full disk)."""
    chunk = b"\0" * 4096
    with open(os.path.join(os.environ[FILL_DIR_ENV], "filler"), "ab", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise


class FaultHook(TrainerHook):
    def __init__(self, points, fills, pauses):
        self.points = points  # {(epoch, step): signal}
        self.fills = fills  # {(epoch, step)}
        self.pauses = pauses  # {(epoch, step)}

    def after_step(self, trainer, state) -> None:
        where = (state.epoch, state.step + 1)
        if where in self.fills:
            fill_disk()
        if where in self.pauses:
            deadline = time.time() + 120
            while stop_requested() is None and time.time() < deadline:
                time.sleep(0.05)
        signum = self.points.get(where)
        if signum is not None:
            _die(signum)


def _hook_factory(cfg):
    actions = _actions()
    points = {(int(a[1]), int(a[2])): getattr(signal, "SIG" + a[3]) for a in actions if a[0] == "signal"}
    fills = {(int(a[1]), int(a[2])) for a in actions if a[0] == "fill"}
    pauses = {(int(a[1]), int(a[2])) for a in actions if a[0] == "pause"}
    return FaultHook(points, fills, pauses) if points or fills or pauses else None


register_hook(_hook_factory)

_original_save = run_folder.save_checkpoint_atomic


def _faulty_save(obj, path):
    name, epoch = os.path.basename(path), str(obj.get("epoch"))
    for action in _actions():
        if action[0] == "in-save" and action[1:] == [name, epoch]:
            fileio.atomic_write(path, lambda f: (torch.save(obj, f), f.flush(), _die()))
    _original_save(obj, path)
    for action in _actions():
        if action[0] == "after-save" and action[1:] == [name, epoch]:
            _die()
        if action[0] == "fill-after-save" and action[1:] == [name, epoch]:
            fill_disk()


run_folder.save_checkpoint_atomic = _faulty_save

_original_write_text = run_folder.write_text_atomic
_texts_written = set()


def _faulty_write_text(path, text):
    _original_write_text(path, text)
    name = os.path.basename(path)
    first = name not in _texts_written
    _texts_written.add(name)
    if first and ["fill-after-text", name] in _actions():
        fill_disk()


run_folder.write_text_atomic = _faulty_write_text
