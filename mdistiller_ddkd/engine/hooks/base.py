"""The hook interface: extra work at named points of training, without touching the loop.

A hook subclasses ``TrainerHook`` and overrides what it needs; a factory ``factory(cfg) -> TrainerHook or
None`` (None: not wanted by this config) is registered with ``register_hook(factory)``: the built-in ones
by ``engine/hooks/__init__.py``, others by plugins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

from ...registry import Registry


@dataclass
class StepState:
    """What a training step produced (the losses still carry their graphs until the update is done)."""

    epoch: int
    step: int
    global_step: int
    batch: Dict[str, object]
    logits: torch.Tensor
    losses: Dict[str, torch.Tensor]


class TrainerHook:
    """Called by the trainer on every rank; ``trainer.runtime.is_main`` tells the rank that writes."""

    def before_train(self, trainer) -> None:
        """After setup (and resume), before the first epoch."""

    def before_epoch(self, trainer, epoch: int) -> None:
        """Before the first step of ``epoch`` (1-based)."""

    def after_step(self, trainer, state: StepState) -> None:
        """After the parameter update of one step."""

    def epoch_record(self, trainer, epoch: int, record: Dict) -> None:
        """Add columns to the epoch's record before it is written (results.json, worklog, TensorBoard)."""

    def after_epoch(self, trainer, epoch: int, record: Dict) -> None:
        """After the epoch's files are committed."""

    def after_train(self, trainer) -> None:
        """After the last epoch, or when training stops with an error."""


HookFactory = Callable[[object], Optional[TrainerHook]]
#: name -> factory, in the order their hooks run: the built-in ones (``engine/hooks/__init__.py``), then
#: those plugins register
HOOKS: Registry[HookFactory] = Registry("trainer hook")


def register_hook(factory: HookFactory, name: Optional[str] = None) -> HookFactory:
    """Add ``factory(cfg)`` to the hooks every trainer builds, after those registered before (usable as a
    decorator); ``name`` defaults to the factory's ``module.qualname``."""
    return HOOKS.register(name or f"{factory.__module__}.{factory.__qualname__}", factory)
