"""A run's output folder (mdistiller's layout): one writer, one commit point per epoch, self-repairing.

Files: ``latest``, ``best``, ``epoch_N`` (distiller state, optimizer, RNG, history), ``student_latest``,
``student_best``, ``student_N`` (the student's state dict), ``results.json``, ``worklog.txt``, ``config.yaml``,
``train.events/`` and, while a process writes, the lock ``.lock``.

Every file is written atomically (temporary file, fsync, rename, fsync of the folder). Renaming ``latest``
is the epoch's commit point; everything else is derived from it and written after it, so a kill at any
moment leaves a ``latest`` that the other files either agree with or lag behind. ``repair`` (on every
resume) removes stale temporary files and rebuilds what lags from ``latest``: ``student_latest``, ``best``
/ ``student_best`` when ``latest`` is the best epoch, a due ``epoch_N`` / ``student_N``, ``results.json`` and the
worklog's missing epoch lines. A mid-epoch ``latest`` (written on SIGTERM / SIGINT) carries a ``partial``
entry and leaves the files of its last complete epoch as they are.
"""

from __future__ import annotations

import json
import os
import re
from typing import Callable, Dict, List, Optional

import torch

from ..fileio import make_dirs, remove_stale_temp_files, write_text_atomic
from ..results_file import RESULTS
from .checkpoint import load_checkpoint, save_checkpoint_atomic
from .lock import OutputLock

LATEST, BEST, STUDENT_LATEST, STUDENT_BEST = "latest", "best", "student_latest", "student_best"
WORKLOG, CONFIG = "worklog.txt", "config.yaml"
EPOCH_RULE = "-" * 25
_EPOCH_LINE = re.compile(r"^epoch: (\d+)(?:\t|$)", re.MULTILINE)


def worklog_line(record: Dict) -> str:
    """One epoch of worklog.txt: ``key: value`` pairs separated by tabs (as mdistiller)."""
    return "\t".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in record.items())


def student_checkpoint(state: Dict, test_acc: Optional[float]) -> Dict:
    """``{"model": student state dict, "epoch", "test_acc"}`` from a trainer state (the ``student.``
    entries of the distiller's state dict)."""
    prefix = "student."
    model = {k[len(prefix):]: v for k, v in state["model"].items() if k.startswith(prefix)}
    return {"model": model, "epoch": state["epoch"], "test_acc": test_acc}


def best_epoch(history: List[Dict]) -> Optional[int]:
    """The epoch ``best`` holds: the last one that reached the highest test accuracy (``RunProgress.add_epoch``:
    mdistiller replaces ``best`` on a tie)."""
    best, epoch = None, None
    for record in history:
        if best is None or record["test_acc"] >= best:
            best, epoch = record["test_acc"], record["epoch"]
    return epoch


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


class RunFolder:
    """The folder ``path``: ``claim()`` it (lock) before writing, ``release()`` when done."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = OutputLock(path)
        self._created: List[str] = []  # folders this process created, deepest first

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def has_run(self) -> bool:
        return os.path.isfile(self.file(LATEST))

    # ------------------------------------------------------------------ one writer
    def claim(self) -> None:
        """Create the folder if needed and take its lock (``OutputInUseError`` names the holder)."""
        folder, missing = os.path.abspath(self.path), []
        while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
            missing.append(folder)
            folder = os.path.dirname(folder)
        make_dirs(self.path)
        self._created = missing
        self.lock.acquire()

    def release(self) -> None:
        """Drop the lock; folders this process created for a run that never started are removed again."""
        self.lock.release()
        for folder in self._created:
            try:
                os.rmdir(folder)  # only if empty
            except OSError:
                break
        self._created = []

    def keep(self) -> None:
        """The run has started: its folders stay."""
        self._created = []

    # ------------------------------------------------------------------ writes
    def start(self, config_text: str) -> None:
        """A fresh run: remove what a killed writer left half-written, write config.yaml."""
        remove_stale_temp_files(self.path)
        self.write_config(config_text)

    def write_config(self, config_text: str) -> None:
        """config.yaml: what the next ``--resume`` compares its config with."""
        self.write_text_if_changed(CONFIG, config_text)

    def write_text_if_changed(self, name: str, text: str) -> bool:
        if _read_text(self.file(name)) == text:
            return False
        write_text_atomic(self.file(name), text)
        return True

    def commit_latest(self, state: Dict) -> None:
        """The epoch's commit point: ``latest``; then ``write_derived``."""
        save_checkpoint_atomic(state, self.file(LATEST))

    def write_derived(self, state: Dict, test_acc: float, is_best: bool, keep_copy: bool) -> None:
        """What an epoch's ``latest`` implies, in mdistiller's order: ``student_latest``, a due ``epoch_N`` /
        ``student_N`` copy, ``best`` / ``student_best`` for a best epoch (``repair`` rebuilds whatever a crash
        left out)."""
        for name, make in self._derived(state, test_acc, is_best, keep_copy):
            save_checkpoint_atomic(make(), self.file(name))

    @staticmethod
    def _derived(state: Dict, test_acc: Optional[float], is_best: bool, keep_copy: bool):
        """``[(file name, builder of its contents)]`` of the files an epoch's ``latest`` implies."""
        epoch = state["epoch"]
        targets = [(STUDENT_LATEST, lambda: student_checkpoint(state, test_acc))]
        if keep_copy:
            targets += [(f"epoch_{epoch}", lambda: state),
                        (f"student_{epoch}", lambda: student_checkpoint(state, test_acc))]
        if is_best:
            targets += [(BEST, lambda: state), (STUDENT_BEST, lambda: student_checkpoint(state, test_acc))]
        return targets

    def save_partial(self, state: Dict) -> None:
        """A mid-epoch ``latest`` (``state["partial"]`` says where); the other files stay at the last epoch."""
        save_checkpoint_atomic(state, self.file(LATEST))

    def write_records(self, results: Dict) -> None:
        """``results.json`` and the worklog's lines for every epoch of ``results["history"]`` it lacks (and
        ``best_acc`` after the last epoch of the run)."""
        self.write_text_if_changed(RESULTS, json.dumps(results, indent=1))
        log = _read_text(self.file(WORKLOG)) or ""
        present = {int(m.group(1)) for m in _EPOCH_LINE.finditer(log)}
        blocks = []
        for record in results["history"]:
            if record["epoch"] not in present:
                blocks.append(worklog_line(record) + "\n" + EPOCH_RULE + "\n")
                if record["epoch"] == results["epochs"]:
                    blocks.append(f"best_acc\t{results['best_acc']:.4f}\n")
        if blocks:
            write_text_atomic(self.file(WORKLOG), log + "".join(blocks))

    def note(self, line: str) -> None:
        """Append one line to the worklog (resume notes)."""
        write_text_atomic(self.file(WORKLOG), (_read_text(self.file(WORKLOG)) or "") + line.rstrip("\n") + "\n")

    # ------------------------------------------------------------------ repair
    def _epoch_of(self, name: str) -> Optional[int]:
        """The epoch a checkpoint file holds, or None when it is missing or unreadable."""
        if not os.path.isfile(self.file(name)):
            return None
        try:
            return int(torch.load(self.file(name), map_location="cpu", weights_only=True, mmap=True)["epoch"])
        except Exception:  # unreadable or foreign: rebuilt from latest
            return None

    def repair(self, state: Dict, keep_copy: Callable[[int], bool]) -> List[str]:
        """Rebuild the checkpoint files that lag behind ``latest`` (``state``); returns what was rewritten,
        stale temporary files included. Records are rebuilt by ``write_records``."""
        done = [f"removed {name}" for name in remove_stale_temp_files(self.path)]
        if state.get("partial"):
            return done  # the last complete epoch's files were committed before the mid-epoch latest
        epoch, history = state["epoch"], json.loads(state.get("history", "[]"))
        test_acc = next((r["test_acc"] for r in history if r["epoch"] == epoch), None)
        for name, make in self._derived(state, test_acc, best_epoch(history) == epoch, keep_copy(epoch)):
            if self._epoch_of(name) != epoch:
                save_checkpoint_atomic(make(), self.file(name))
                done.append(f"rebuilt {name}")
        return done

    def load_latest(self) -> Dict:
        return load_checkpoint(self.file(LATEST), map_location="cpu", todo=(
            "restore it, or copy one of the run's epoch_N over it, or start afresh in another folder"))
