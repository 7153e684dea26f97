"""A finished (or running) run folder, opened by the tools that read one (``ddkd-diagnose``,
``ddkd-visualize``, ``ddkd-export``): its ``config.yaml``, a checkpoint, the student and the teacher.

The teacher is resolved as training resolves it (``DISTILLER.TEACHER_CKPT``, else the zoo's released
checkpoint, else downloadable weights); ``teacher_ckpt`` overrides the path (the run's teacher file has
moved, or another teacher is wanted). What a user can fix is a ``UserError`` saying what to do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn
from yacs.config import CfgNode as CN

from ..distillers import Distiller
from ..errors import CheckpointMismatchError, MissingInputError
from ..models import get_model
from .build import build_distiller, build_teacher, model_kwargs
from .cfg import load_config
from .checkpoint import describe_state_dict_mismatch, extract_state_dict, load_checkpoint
from .run_folder import CONFIG, STUDENT_BEST, STUDENT_LATEST

#: ``--checkpoint`` of the tools that read the student alone -> the file in the run folder
STUDENT_CHECKPOINTS: Dict[str, str] = {"best": STUDENT_BEST, "latest": STUDENT_LATEST}


@dataclass
class RunDir:
    """A run folder and its config (``config.yaml`` with the tool's overrides)."""

    path: str
    cfg: CN

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def checkpoint(self, name: str) -> str:
        """The path of checkpoint ``name``; ``MissingInputError`` when the run has not written it."""
        path = self.file(name)
        if not os.path.isfile(path):
            raise MissingInputError(f"{self.path} has no checkpoint {name!r} (checkpoints are written at the end of "
                                    f"each epoch): wait for the first epoch, or choose another checkpoint")
        return path


def open_run(run_dir: str, opts: Sequence[str] = (), teacher_ckpt: str = "") -> RunDir:
    """``run_dir`` with its config: ``config.yaml``, then ``opts`` (KEY VALUE), then ``teacher_ckpt``."""
    config = os.path.join(run_dir, CONFIG)
    if not os.path.isfile(config):
        raise MissingInputError(f"{run_dir} is not a run folder (no {CONFIG}); give the output folder of a training "
                                f"run (LOG.PREFIX/EXPERIMENT.PROJECT/EXPERIMENT.NAME)")
    extra = ["DISTILLER.TEACHER_CKPT", teacher_ckpt] if teacher_ckpt else []
    return RunDir(run_dir, load_config(config, [*opts, *extra]))


def read_student_state(run: RunDir, which: str = "best") -> Tuple[Mapping[str, torch.Tensor], Optional[int]]:
    """``(student state dict, epoch)`` of ``student_best`` / ``student_latest`` (``which``: best | latest)."""
    state = load_checkpoint(run.checkpoint(STUDENT_CHECKPOINTS[which]))
    epoch = state.get("epoch") if isinstance(state, Mapping) else None
    return extract_state_dict(state), (int(epoch) if epoch is not None else None)


def infer_num_classes(cfg: CN, state: Mapping[str, torch.Tensor]) -> int:
    """The number of classes a student state dict was trained for: the size, in ``state``, of the one
    dimension that differs between the model built for 1 and for 2 classes (its classifier's)."""
    name, dataset = cfg.DISTILLER.STUDENT, cfg.DATASET.TYPE
    kwargs = model_kwargs(cfg, "STUDENT")
    one, two = (get_model(name, dataset, n, **kwargs).state_dict() for n in (1, 2))
    for key, tensor in one.items():
        if key in state and tensor.shape != two[key].shape:
            dim = next(i for i, (a, b) in enumerate(zip(tensor.shape, two[key].shape)) if a != b)
            if state[key].dim() == tensor.dim():
                return int(state[key].shape[dim])
    raise CheckpointMismatchError(f"the checkpoint is not a {name} of the {dataset} zoo (no classifier weights "
                                  f"found); check DISTILLER.STUDENT")


def load_student(run: RunDir, which: str = "best", num_classes: Optional[int] = None) -> Tuple[nn.Module, int]:
    """``(student in eval mode with its trained weights, epoch)``; ``num_classes`` defaults to what the
    checkpoint holds."""
    state, epoch = read_student_state(run, which)
    if num_classes is None:
        num_classes = infer_num_classes(run.cfg, state)
    kwargs = model_kwargs(run.cfg, "STUDENT")
    student = get_model(run.cfg.DISTILLER.STUDENT, run.cfg.DATASET.TYPE, num_classes, **kwargs)
    problems = describe_state_dict_mismatch(student, state)
    if problems:
        raise CheckpointMismatchError(f"{run.file(STUDENT_CHECKPOINTS[which])} does not fit "
                                      f"{run.cfg.DISTILLER.STUDENT} with {num_classes} classes: {'; '.join(problems)}")
    student.load_state_dict(state, strict=True)
    return student.eval(), (epoch if epoch is not None else 0)


def load_teacher(run: RunDir, num_classes: int) -> nn.Module:
    """The run's teacher in eval mode, resolved as training resolves it (``open_run``'s ``teacher_ckpt``
    overrides the path)."""
    return build_teacher(run.cfg, num_classes).eval()


def load_distiller(run: RunDir, checkpoint: str, num_data: int, num_classes: int) -> Tuple[Distiller, int]:
    """``(distiller with the state of checkpoint ``checkpoint`` (latest, best, epoch_N), epoch)``: the
    method's own modules and the teacher as they were saved."""
    path = run.checkpoint(checkpoint)
    distiller, _ = build_distiller(run.cfg, num_data, num_classes)
    state = load_checkpoint(path, map_location="cpu")
    model = state.get("model") if isinstance(state, Mapping) else None
    problems = describe_state_dict_mismatch(distiller, model) if isinstance(model, Mapping) else ["no 'model' entry"]
    if problems:
        raise CheckpointMismatchError(f"{path} is not a checkpoint of this run's {run.cfg.DISTILLER.TYPE} distiller "
                                      f"(latest, best or epoch_N): {'; '.join(problems)}")
    distiller.load_state_dict(model)
    return distiller, int(state.get("epoch", 0))
