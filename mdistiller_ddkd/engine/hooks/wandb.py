"""The ``LOG.WANDB`` trainer hook: one Weights & Biases run per training, as mdistiller logs it.

Project ``EXPERIMENT.PROJECT``, name ``EXPERIMENT.NAME``, tags ``EXPERIMENT.TAG`` split on commas, group
``LOG.WANDB_GROUP`` (suites set it to their name) and the full config; after each committed epoch its
record's numbers (losses, accuracies, lr, seconds, the ``diag_`` columns when ``LOG.DIAGNOSTICS`` is on) at
step = epoch, and the best accuracy in the summary. The W&B run id is kept in the run folder
(``wandb.json``), so ``--resume`` continues the same W&B run; W&B's files go into the run folder unless
``WANDB_DIR`` says otherwise. Only rank 0 logs. ``wandb`` is the optional ``[wandb]`` extra: the factory
checks that it is importable and that W&B accepts the project name and tags (W&B's own ``Settings``
validators) before the trainer touches the output folder.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
from typing import Dict, List, Optional

import yaml

from ...errors import ConfigError, DataFileError, UserError
from ...fileio import write_text_atomic
from .base import TrainerHook

INSTALL_HINT = "LOG.WANDB True needs wandb: pip install 'mdistiller-ddkd[wandb]' (or pip install wandb)"
#: the file in the run folder that keeps the W&B run id (``--resume`` continues that run)
RUN_ID_FILE = "wandb.json"
_ID_CHARS = string.ascii_lowercase + string.digits


class WandbUnavailableError(UserError, ImportError):
    """``LOG.WANDB`` is on but wandb is not installed; the message says how to install it."""


class WandbError(UserError, RuntimeError):
    """W&B refused to start or continue the run (not logged in while online, unreachable, ...)."""


def import_wandb():
    """The ``wandb`` module, or ``WandbUnavailableError`` with the install hint."""
    try:
        import wandb
    except ImportError:
        raise WandbUnavailableError(INSTALL_HINT) from None
    return wandb


def split_tags(tag: str) -> List[str]:
    """``EXPERIMENT.TAG`` as W&B tags: split on commas, blanks dropped (as mdistiller splits them)."""
    return [t.strip() for t in str(tag).split(",") if t.strip()]


def _first_message(err: Exception) -> str:
    errors = getattr(err, "errors", None)  # pydantic's ValidationError: the first error's message
    return str(errors()[0]["msg"]) if callable(errors) else str(err)


def check_names(wandb, project: str, tags: List[str]) -> None:
    """``ConfigError`` unless W&B's own settings validators accept ``project`` and ``tags``."""
    try:
        wandb.Settings(project=project, run_tags=tuple(tags))
    except (wandb.errors.Error, ValueError) as err:
        raise ConfigError(f"LOG.WANDB: W&B rejects EXPERIMENT.PROJECT {project!r} or EXPERIMENT.TAG "
                          f"{','.join(tags)!r}: {_first_message(err)}") from None


def read_run_id(run_dir: str) -> Optional[str]:
    """The W&B run id kept in ``run_dir``, or None when the run has none yet."""
    path = os.path.join(run_dir, RUN_ID_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            run_id = json.load(f)["run_id"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataFileError(f"{path} is not readable ({err}); restore it, or remove it to log the rest of this "
                            f"run to a new W&B run") from None
    if not isinstance(run_id, str) or not run_id:
        raise DataFileError(f"{path} holds no run id; remove it to log the rest of this run to a new W&B run")
    return run_id


def run_id_for(run_dir: str) -> str:
    """The run's W&B id: the kept one, or a new one written to ``wandb.json`` before W&B starts."""
    run_id = read_run_id(run_dir)
    if run_id is None:
        run_id = "".join(secrets.choice(_ID_CHARS) for _ in range(8))
        write_text_atomic(os.path.join(run_dir, RUN_ID_FILE), json.dumps({"run_id": run_id}) + "\n")
    return run_id


def loggable(record: Dict) -> Dict[str, float]:
    """The numbers of an epoch's record (lists, such as the γ histograms, stay in results.json)."""
    return {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class WandbHook(TrainerHook):
    """Starts (or continues) the W&B run before the first epoch and logs every committed epoch; rank 0."""

    def __init__(self, cfg, wandb) -> None:
        self.cfg, self.wandb, self.run = cfg, wandb, None

    def before_train(self, trainer) -> None:
        if not trainer.runtime.is_main:
            return
        cfg, wandb = self.cfg, self.wandb
        run_id, folder = run_id_for(trainer.output_dir), os.environ.get("WANDB_DIR") or trainer.output_dir
        try:
            self.run = wandb.init(
                project=cfg.EXPERIMENT.PROJECT, name=cfg.EXPERIMENT.NAME or None, tags=split_tags(cfg.EXPERIMENT.TAG),
                group=cfg.LOG.WANDB_GROUP or None, config=yaml.safe_load(cfg.dump()), id=run_id, resume="allow",
                dir=folder, settings=wandb.Settings(console="off"))
        except wandb.errors.Error as err:
            raise WandbError(f"W&B could not start the run: {_first_message(err)} (log in with `wandb login`, or "
                             f"log offline with WANDB_MODE=offline)") from None

    def after_epoch(self, trainer, epoch: int, record: Dict) -> None:
        if self.run is None:
            return
        self.run.log(loggable(record), step=epoch)
        self.run.summary["best_acc"] = trainer.progress.best_acc
        self.run.summary["best_acc_top5"] = trainer.progress.best_acc_top5

    def after_train(self, trainer) -> None:
        if self.run is None:
            return
        failing = sys.exc_info()[1]
        run, self.run = self.run, None
        run.finish(exit_code=0 if failing is None else int(getattr(failing, "exit_code", 1)))


def wandb_hook(cfg) -> Optional[WandbHook]:
    """The W&B hook when ``LOG.WANDB`` is on; wandb missing or a name W&B rejects is a one-line error."""
    if not cfg.LOG.WANDB:
        return None
    wandb = import_wandb()
    check_names(wandb, cfg.EXPERIMENT.PROJECT, split_tags(cfg.EXPERIMENT.TAG))
    return WandbHook(cfg, wandb)
