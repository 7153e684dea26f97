"""Trainer hooks: the interface (``base.py``) and the built-in hooks. This module is the composition root
of the hook registry: the built-in factories are listed here, a plugin adds its own with ``register_hook``.
Factories are pure (they validate the config, nothing else): the trainer builds the hooks before it touches
the output folder, so a hook that cannot run is refused first."""

from __future__ import annotations

from typing import List, Sequence

from .base import HOOKS, HookFactory, StepState, TrainerHook, register_hook
from .diagnostics import DiagnosticsHook, diagnostics_hook
from .wandb import WandbHook, wandb_hook

#: the built-in hook factories, in the order their hooks run (plugins' hooks follow)
BUILTIN_HOOKS: Sequence[HookFactory] = (register_hook(diagnostics_hook, "diagnostics"),
                                        register_hook(wandb_hook, "wandb"))


def build_hooks(cfg) -> List[TrainerHook]:
    """The hooks the registered factories (the built-in ones first) want for ``cfg``, in that order."""
    return [hook for hook in (factory(cfg) for factory in HOOKS.values()) if hook is not None]


__all__ = ["BUILTIN_HOOKS", "HOOKS", "DiagnosticsHook", "HookFactory", "StepState", "TrainerHook", "WandbHook",
           "build_hooks", "diagnostics_hook", "register_hook", "wandb_hook"]
