"""A test plugin (``--plugins tests.e2e.fault_plugin``) that kills or signals the training process at exact
moments, chosen by ``$DDKD_FAULT`` (comma-separated):

* ``signal:E:S:NAME`` — after step S (1-based) of epoch E, send signal NAME (KILL, TERM, INT) to itself;
* ``in-save:FILE:E`` — while saving checkpoint FILE (``latest``, ``student_latest``, ...) of epoch E: write
  the temporary file completely, then SIGKILL before the rename;
* ``after-save:FILE:E`` — SIGKILL right after FILE of epoch E is renamed into place (before anything else).

Only the tests use it; it relies on the trainer's hooks and on ``run_folder``'s use of
``save_checkpoint_atomic``.
"""

from __future__ import annotations

import os
import signal

import torch

from mdistiller_ddkd.engine import checkpoint, run_folder
from mdistiller_ddkd.engine.hooks import TrainerHook, register_hook

ENV = "DDKD_FAULT"


def _actions():
    return [a.split(":") for a in os.environ.get(ENV, "").split(",") if a]


def _die(signum=signal.SIGKILL) -> None:
    os.kill(os.getpid(), signum)


class FaultHook(TrainerHook):
    def __init__(self, points):
        self.points = points  # {(epoch, step): signal}

    def after_step(self, trainer, state) -> None:
        signum = self.points.get((state.epoch, state.step + 1))
        if signum is not None:
            _die(signum)


def _hook_factory(cfg):
    points = {(int(e), int(s)): getattr(signal, "SIG" + name) for kind, e, s, name in
              (a for a in _actions() if a[0] == "signal")}
    return FaultHook(points) if points else None


register_hook(_hook_factory)

_original_save = run_folder.save_checkpoint_atomic


def _faulty_save(obj, path):
    name, epoch = os.path.basename(path), str(obj.get("epoch"))
    for action in _actions():
        if action[0] == "in-save" and action[1:] == [name, epoch]:
            checkpoint.atomic_write(path, lambda f: (torch.save(obj, f), f.flush(), _die()))
    _original_save(obj, path)
    for action in _actions():
        if action[0] == "after-save" and action[1:] == [name, epoch]:
            _die()


run_folder.save_checkpoint_atomic = _faulty_save
