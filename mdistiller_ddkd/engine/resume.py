"""``--resume``: check the run's ``latest`` against this setup, restore it exactly, repair the folder.

A ``latest`` is refused (one line, nothing changed) when it is not a trainer checkpoint, holds more epochs
than ``SOLVER.EPOCHS``, was trained on a different number of images, or does not fit the distiller. A
mid-epoch ``latest`` continues at the step after the one it saved, with this rank's RNG state and running
sums; a different world size cannot continue exactly and restarts the interrupted epoch (noted).
"""

from __future__ import annotations

import json
from typing import Dict, List

import torch

from ..errors import CheckpointMismatchError, CheckpointReadError, ConfigError, ResumeMismatchError, UserError
from ..rng import seed_everything, set_rng_state
from .checkpoint import describe_state_dict_mismatch
from .resume_check import describe
from .run_folder import LATEST
from .state import LATEST_KEYS, RunProgress


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
        raise ResumeMismatchError(f"--resume: the run trained on {saved} images, the data now has {num_data} "
                                  f"(DATASET.ROOT or the dataset changed); restore the data, or pass "
                                  f"--resume-with-changes")
    problems = describe_state_dict_mismatch(distiller, state["model"])
    if problems:
        raise CheckpointMismatchError(
            f"{path} does not fit {cfg.DISTILLER.TYPE} ({cfg.DISTILLER.TEACHER} -> {cfg.DISTILLER.STUDENT}): "
            f"{'; '.join(problems)} — resume with the run's own config")


def restore_progress(state: Dict) -> RunProgress:
    """The run's progress as ``latest`` (``state``) records it (before this rank's own state)."""
    partial = state.get("partial")
    return RunProgress(
        start_epoch=partial["epoch"] if partial else state["epoch"] + 1,
        start_step=partial["step"] if partial else 0,
        best_acc=state["best_acc"],
        best_acc_top5=state.get("best_acc_top5", -1.0),
        history=json.loads(state.get("history", "[]")),
        committed_epoch=state["epoch"],
        latest_holds=f"epoch {state['epoch']}" + (f", then epoch {partial['epoch']} up to step {partial['step']}"
                                                   if partial else ""),
    )


def restore_rank_state(state: Dict, progress: RunProgress, cfg, rank: int, world_size: int) -> List[str]:
    """Set this rank's RNG state (and mid-epoch sums) from ``state``; returns the changes that make the
    continuation inexact (another world size: the interrupted epoch is redone whole)."""
    ranks = state.get("rank_states")
    changes = []
    if ranks and len(ranks) == world_size:
        mine = ranks[rank]
    elif world_size == 1 and not ranks:
        mine = {"rng": state["rng"]}  # a latest written before rank states were saved
    else:
        mine = {}
        seed_everything(cfg.EXPERIMENT.SEED + rank + 1000 * state["epoch"])
        changes.append(f"world size {len(ranks or [0])} -> {world_size} (not exact)")
    if "rng" in mine:
        set_rng_state(mine["rng"])
    progress.resume_sums = mine.get("sums") if state.get("partial") else None
    if state.get("partial") and progress.resume_sums is None:
        progress.start_epoch, progress.start_step = state["epoch"] + 1, 0  # redo the interrupted epoch whole
    return changes


def _load(trainer, state: Dict) -> None:
    path = trainer.folder.file(LATEST)
    trainer.distiller.load_state_dict(state["model"])
    try:
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.scaler.load_state_dict(state["scaler"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointMismatchError(f"the optimizer state in {path} does not fit this config ({err}) — resume "
                                      f"with the run's own config") from None
    trainer.progress = restore_progress(state)
    trainer.resume_changes += restore_rank_state(state, trainer.progress, trainer.cfg, trainer.runtime.rank,
                                                 trainer.runtime.world_size)


def resume_run(trainer) -> None:
    """Continue ``trainer``'s run from its folder's ``latest``: check, restore, repair the derived files and
    the records, note what changed in the worklog."""
    path = trainer.folder.file(LATEST)
    state = trainer.folder.load_latest()
    check_latest(state, path, trainer.cfg, trainer.num_data, trainer.distiller, trainer.allow_changes)
    try:
        _load(trainer, state)
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
        if isinstance(err, UserError):
            raise
        raise CheckpointReadError(f"{path} is damaged ({type(err).__name__}: {err}); restore it, or copy one of "
                                  f"the run's epoch_N over it") from None
    if not trainer.runtime.is_main:
        return
    folder, progress, cfg = trainer.folder, trainer.progress, trainer.cfg
    done = folder.repair(state, trainer.keep_copy)
    finished = not state.get("partial") and state["epoch"] >= cfg.SOLVER.EPOCHS
    folder.write_records(trainer.results(finished))
    where = (f"epoch {state['partial']['epoch']} after step {progress.start_step}" if state.get("partial")
             else f"after epoch {state['epoch']}")
    changes = describe(map(str, trainer.resume_changes)) if trainer.resume_changes else ""
    if changes:
        folder.note(f"resume {where}: changed {changes}")
    folder.write_config(cfg.dump())  # what the next --resume compares with
    if done:
        folder.note(f"resume {where}: {', '.join(done)}")
    print(f"[mdistiller_ddkd] resumed from {path} ({where}, best {progress.best_acc:.2f})"
          + (f"; changed {changes}" if changes else ""), flush=True)


__all__ = ["check_latest", "restore_progress", "restore_rank_state", "resume_run"]
