"""What a run's checkpoints and records hold: its progress, the ``latest`` state, and results.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..rng import rng_state
from .distributed import Runtime, gather_objects
from .evaluation import EpochSums

#: what a ``latest`` written by this trainer always holds
LATEST_KEYS = ("epoch", "model", "optimizer", "best_acc", "scaler", "rng")


@dataclass
class RunProgress:
    """Where a run stands: the next epoch and step, the best accuracy so far, every epoch's record, and what
    ``latest`` holds. ``resume_sums`` are this rank's running sums of an epoch interrupted mid-way."""

    start_epoch: int = 1
    start_step: int = 0
    best_acc: float = -1.0
    best_acc_top5: float = -1.0
    history: List[Dict] = field(default_factory=list)
    committed_epoch: int = 0
    latest_holds: Optional[str] = None  #: "epoch 3", "epoch 3, then epoch 4 up to step 2"; None: nothing yet
    resume_sums: Optional[Dict] = None

    def add_epoch(self, record: Dict) -> bool:
        """Append the epoch's record; True when ``best`` / ``student_best`` take this epoch. mdistiller's rule:
        the best accuracy rises only on a strictly higher one, and an epoch that equals it (a tie included)
        replaces the ``best`` checkpoint, so ``best`` holds the last epoch that reached the highest accuracy."""
        self.best_acc = max(self.best_acc, record["test_acc"])
        is_best = record["test_acc"] >= self.best_acc
        if is_best:
            self.best_acc_top5 = record["test_acc_top5"]
        self.history.append(record)
        return is_best

    def mark_committed(self, epoch: int) -> None:
        """``latest`` now holds the end of ``epoch``."""
        self.committed_epoch, self.start_step = epoch, 0
        self.latest_holds = f"epoch {epoch}"

    def epoch_start(self, epoch: int, device) -> "tuple[int, EpochSums]":
        """``(first step, running sums)`` of ``epoch``: from a mid-epoch checkpoint when resuming inside it."""
        if self.resume_sums is not None and epoch == self.start_epoch:
            sums = EpochSums.from_state(self.resume_sums, device)
            self.resume_sums = None
            return self.start_step, sums
        return 0, EpochSums.zeros(device)

    def describe_latest(self, output_dir: str) -> str:
        """What a user can count on after a stop, as a clause."""
        if self.latest_holds is None:
            return "no checkpoint has been written yet (the first epoch did not finish)"
        return f"the last good checkpoint ({self.latest_holds}) in {output_dir} is intact"

    def how_to_continue(self) -> str:
        return "--resume continues from it" if self.latest_holds else "start the run again"


def training_state(distiller, optimizer, scaler, progress: RunProgress, num_data: int, runtime: Runtime,
                   epoch: int, partial: Optional[Dict] = None, sums: Optional[EpochSums] = None) -> Optional[Dict]:
    """The checkpoint of the run after ``epoch`` (or inside the next one: ``partial`` = ``{"epoch", "step"}``)
    in mdistiller's layout plus every rank's RNG state (and running sums). Called on every rank (the RNG
    states are gathered); None except on rank 0."""
    mine = {"rng": rng_state(), **({"sums": sums.state()} if sums is not None else {})}
    rank_states = gather_objects(mine, runtime)
    if not runtime.is_main:
        return None
    state = {
        "epoch": epoch,
        "model": distiller.state_dict(),
        "optimizer": optimizer.state_dict(),
        "best_acc": progress.best_acc,
        "best_acc_top5": progress.best_acc_top5,
        "scaler": scaler.state_dict(),
        "rng": rank_states[0]["rng"],
        "rank_states": rank_states,
        "history": json.dumps(progress.history),
        "num_data": num_data,
    }
    if partial is not None:
        state["partial"] = partial
    return state


def results_record(cfg, progress: RunProgress, extra_parameters: int, finished: bool,
                   provenance: Optional[Dict] = None) -> Dict:
    """results.json: the run's identity, best and last accuracies, every epoch's record and, when given, the
    ``provenance`` of its arithmetic (``determinism.run_provenance``, of the process that wrote it)."""
    last = progress.history[-1] if progress.history else {}
    return {
        "method": cfg.DISTILLER.TYPE, "teacher": cfg.DISTILLER.TEACHER, "student": cfg.DISTILLER.STUDENT,
        "dataset": cfg.DATASET.TYPE, "seed": cfg.EXPERIMENT.SEED,
        "epoch": last.get("epoch", 0), "epochs": cfg.SOLVER.EPOCHS, "finished": finished,
        "best_acc": progress.best_acc, "best_acc_top5": progress.best_acc_top5,
        "last_acc": last.get("test_acc"), "last_acc_top5": last.get("test_acc_top5"),
        "extra_parameters": extra_parameters,
        "history": progress.history,
        **({"provenance": provenance} if provenance is not None else {}),
    }
