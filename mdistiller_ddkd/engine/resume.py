"""``--resume``: compare the config with the run's, check ``latest`` against this setup, read what it restores
(the trainer adopts it: ``Trainer.adopt``), then repair the folder and note the resume.

A config key either changes the run's maths (method, models, data, schedule, batch, seed, precision, ...) or
it does not (where output goes, how data is loaded, how far to train). Only the second kind is listed, in
``HARMLESS_KEYS``: every other key — including keys that plugins add — changes the maths, and changing one
refuses the resume unless the user says ``--resume-with-changes``. Harmless changes are allowed and noted in
the worklog.

A ``latest`` is refused (one line, nothing changed) when it is not a trainer checkpoint, holds more epochs
than ``SOLVER.EPOCHS``, was trained on a different number of images, or does not fit the distiller. A
mid-epoch ``latest`` continues at the step after the one it saved, with this rank's RNG state and running
sums; a different world size cannot continue exactly and restarts the interrupted epoch (noted).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import torch
from yacs.config import CfgNode as CN

from ..errors import CheckpointMismatchError, CheckpointReadError, ConfigError, UserError
from ..rng import seed_everything, set_rng_state
from .cfg import build_default_config, iter_flat, read_config_file
from .checkpoint import describe_state_dict_mismatch
from .distributed import Runtime
from .run_folder import LATEST, RunFolder
from .state import LATEST_KEYS, RunProgress

# ---------------------------------------------------------------------------------------------- config
#: keys (or prefixes ending with ".") a resumed run may change without changing what it computes:
#: logging and output naming, data location and loading, the device and its memory layout/compilation, the
#: teacher checkpoint path (the teacher's weights are restored from ``latest``), and the number of epochs
#: (extending a run is what --resume is for)
HARMLESS_KEYS: Tuple[str, ...] = (
    "LOG.", "EXPERIMENT.PROJECT", "EXPERIMENT.NAME", "EXPERIMENT.TAG",
    "DATASET.ROOT", "DATASET.DOWNLOAD", "DATASET.CHECK_INTEGRITY", "DATASET.NUM_WORKERS", "DATASET.TEST.BATCH_SIZE",
    "SOLVER.EPOCHS", "SOLVER.DEVICE", "SOLVER.CHANNELS_LAST", "SOLVER.COMPILE", "DISTILLER.TEACHER_CKPT",
)
_ABSENT = "(absent)"


class Change(NamedTuple):
    key: str
    saved: Any
    current: Any

    def __str__(self) -> str:
        return f"{self.key} {self.saved!r} -> {self.current!r}"


def is_harmless(key: str) -> bool:
    """Whether changing ``key`` on resume leaves the run's maths unchanged."""
    return any(key.startswith(k) if k.endswith(".") else key == k for k in HARMLESS_KEYS)


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def _flat(mapping: Dict, prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _normal(value)
    return out


def config_changes(saved: Dict, current: CN) -> List[Change]:
    """Every leaf key whose value differs between the saved config (a nested dict) and ``current``; a key
    the saved file lacks (added to the toolbox since) counts only if ``current`` moves it off its default."""
    old = _flat(saved)
    new = dict((k, _normal(v)) for k, v in iter_flat(current))
    defaults = dict((k, _normal(v)) for k, v in iter_flat(build_default_config()))
    changes = []
    for key in sorted(set(old) | set(new)):
        before = old.get(key, defaults.get(key, _ABSENT))
        after = new.get(key, _ABSENT)
        if before != after:
            changes.append(Change(key, before, after))
    return changes


def split_changes(changes: Iterable[Change]) -> Tuple[List[Change], List[Change]]:
    """``(maths changes, harmless changes)``."""
    changes = list(changes)
    return [c for c in changes if not is_harmless(c.key)], [c for c in changes if is_harmless(c.key)]


def check_resume_config(saved_path: str, cfg: CN, allow_changes: bool = False) -> List[Change]:
    """The changes to note when ``cfg`` resumes the run whose config is ``saved_path``; raises
    ``ConfigError`` (one line, listing the keys) for maths changes unless ``allow_changes``."""
    if not os.path.isfile(saved_path):
        return []  # a run of an older version, or of mdistiller itself: nothing to compare with
    try:
        saved = read_config_file(saved_path)
    except ConfigError as err:
        if allow_changes:
            return []
        raise ConfigError(f"--resume: {err}; restore it, or pass --resume-with-changes to resume "
                                  f"without comparing configs") from None
    changes = config_changes(saved, cfg)
    maths, _ = split_changes(changes)
    if maths and not allow_changes:
        shown = ", ".join(map(str, maths[:8])) + (f", ... ({len(maths) - 8} more)" if len(maths) > 8 else "")
        raise ConfigError(
            f"--resume: the config differs from the run's {saved_path} in keys that change what it computes: "
            f"{shown}. Restore them to continue this run, pass --resume-with-changes to continue it with the new "
            f"values anyway, or start a new run (another EXPERIMENT.NAME)")
    return changes


def describe(changes: Iterable[Change], limit: Optional[int] = None) -> str:
    items = [str(c) for c in changes]
    return ", ".join(items[:limit] if limit else items)


# ---------------------------------------------------------------------------------------------- latest
def check_latest(state, path: str, cfg, num_data: int, distiller, allow_changes: bool) -> None:
    """Refuse a ``latest`` that is not a trainer checkpoint, or that this setup cannot continue."""
    missing = [k for k in LATEST_KEYS if not isinstance(state, dict) or k not in state]
    if not missing and not (isinstance(state["epoch"], int) and isinstance(state["model"], dict)
                            and all(torch.is_tensor(v) for v in state["model"].values())):
        missing = ["an integer epoch and a state dict of tensors"]
    if missing:
        raise CheckpointReadError(f"{path} lacks {', '.join(missing)}: it is not a checkpoint written by "
                                  f"ddkd-train; restore the run's own latest (or copy one of its epoch_N over it)")
    if state["epoch"] > cfg.SOLVER.EPOCHS:
        raise ConfigError(f"SOLVER.EPOCHS {cfg.SOLVER.EPOCHS} is below the {state['epoch']} epochs {path} "
                          f"already holds; pass SOLVER.EPOCHS {state['epoch']} or more")
    saved = state.get("num_data")
    if saved is not None and saved != num_data and not allow_changes:
        raise ConfigError(f"--resume: the run trained on {saved} images, the data now has {num_data} "
                                  f"(DATASET.ROOT or the dataset changed); restore the data, or pass "
                                  f"--resume-with-changes")
    problems = describe_state_dict_mismatch(distiller, state["model"])
    if problems:
        raise CheckpointMismatchError(
            f"{path} does not fit {cfg.DISTILLER.TYPE} ({cfg.DISTILLER.TEACHER} -> {cfg.DISTILLER.STUDENT}): "
            f"{'; '.join(problems)} — resume with the run's own config")


@contextmanager
def _damaged_as_one_line(path: str) -> Iterator[None]:
    """A ``latest`` in the trainer's layout whose contents do not load becomes one ``CheckpointReadError``."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
        if isinstance(err, UserError):
            raise
        raise CheckpointReadError(f"{path} is damaged ({type(err).__name__}: {err}); restore it, or copy one of "
                                  f"the run's epoch_N over it") from None


def _rank_state(state: Dict, cfg, rank: int, world_size: int) -> Tuple[Dict, Optional[int], List[str]]:
    """``(this rank's saved {"rng", "sums"}, None, [])``; under another world size there is none:
    ``({}, the seed that replaces the RNG state, [the change, noted as inexact])``."""
    ranks = state.get("rank_states")
    if ranks and len(ranks) == world_size:
        return ranks[rank], None, []
    if world_size == 1 and not ranks:
        return {"rng": state["rng"]}, None, []  # a latest written before rank states were saved
    return {}, cfg.EXPERIMENT.SEED + rank + 1000 * state["epoch"], [
        f"world size {len(ranks or [0])} -> {world_size} (not exact)"]


def restore_progress(state: Dict, sums: Optional[Dict]) -> RunProgress:
    """The run's progress as ``latest`` (``state``) records it. A mid-epoch ``latest`` continues inside its
    epoch only with this rank's running sums (``sums``); without them the interrupted epoch is redone whole."""
    partial = state.get("partial")
    inside = partial is not None and sums is not None
    return RunProgress(
        start_epoch=partial["epoch"] if inside else state["epoch"] + 1,
        start_step=partial["step"] if inside else 0,
        best_acc=state["best_acc"],
        best_acc_top5=state.get("best_acc_top5", -1.0),
        history=json.loads(state.get("history", "[]")),
        committed_epoch=state["epoch"],
        latest_holds=f"epoch {state['epoch']}" + (f", then epoch {partial['epoch']} up to step {partial['step']}"
                                                   if partial else ""),
        resume_sums=sums if inside else None,
    )


@dataclass
class Restored:
    """What ``latest`` restores on one rank: the checkpoint (weights, optimizer and scaler states), the run's
    progress (next epoch and step, best accuracies, history), this rank's RNG state or the seed that replaces
    it, and the changes that make the continuation inexact."""

    path: str
    state: Dict
    progress: RunProgress
    rng: Optional[Any]
    reseed: Optional[int]
    changes: List[str]

    def load_into(self, distiller, optimizer, scaler) -> None:
        """Load the weights, the optimizer and scaler states, then set this rank's RNG (last: nothing of the
        setup may draw from it after)."""
        with _damaged_as_one_line(self.path):
            distiller.load_state_dict(self.state["model"])
            try:
                optimizer.load_state_dict(self.state["optimizer"])
                scaler.load_state_dict(self.state["scaler"])
            except (ValueError, KeyError, RuntimeError) as err:
                raise CheckpointMismatchError(f"the optimizer state in {self.path} does not fit this config "
                                              f"({err}) — resume with the run's own config") from None
            if self.reseed is not None:
                seed_everything(self.reseed)
            if self.rng is not None:
                set_rng_state(self.rng)

    def where(self) -> str:
        """Where the run continues, as the worklog and the console say it."""
        partial = self.state.get("partial")
        if partial:
            return f"epoch {partial['epoch']} after step {self.progress.start_step}"
        return f"after epoch {self.state['epoch']}"


def read_latest(folder: RunFolder, cfg, num_data: int, distiller, allow_changes: bool,
                runtime: Runtime) -> Restored:
    """``latest`` of ``folder``, checked against this setup and read for this rank; a refused or damaged one
    is one line (``UserError``). Nothing is loaded or changed: the trainer adopts the result."""
    path = folder.file(LATEST)
    state = folder.load_latest()
    check_latest(state, path, cfg, num_data, distiller, allow_changes)
    with _damaged_as_one_line(path):
        mine, reseed, changes = _rank_state(state, cfg, runtime.rank, runtime.world_size)
        progress = restore_progress(state, mine.get("sums"))
    return Restored(path, state, progress, mine.get("rng"), reseed, changes)


def record_resume(folder: RunFolder, cfg, restored: Restored, changes: Sequence, keep_copy: Callable[[int], bool],
                  results: Callable[[bool], Dict]) -> None:
    """On rank 0, once the trainer adopted ``restored``: rebuild the files that lag behind ``latest``, rewrite
    the records (``results(finished)``: the trainer's results.json) and config.yaml, and note the resume and
    its ``changes`` in the worklog."""
    state, progress = restored.state, restored.progress
    done = folder.repair(state, keep_copy)
    finished = not state.get("partial") and state["epoch"] >= cfg.SOLVER.EPOCHS
    folder.write_records(results(finished))
    where = restored.where()
    changed = describe(map(str, changes)) if changes else ""
    if changed:
        folder.note(f"resume {where}: changed {changed}")
    folder.write_config(cfg.dump())  # what the next --resume compares with
    if done:
        folder.note(f"resume {where}: {', '.join(done)}")
    print(f"[mdistiller_ddkd] resumed from {restored.path} ({where}, best {progress.best_acc:.2f})"
          + (f"; changed {changed}" if changed else ""), flush=True)


__all__ = ["HARMLESS_KEYS", "Change", "Restored", "check_latest", "check_resume_config", "config_changes",
           "describe", "is_harmless", "read_latest", "record_resume", "restore_progress", "split_changes"]
