"""The update-rule interface and registry: how one step's losses become one parameter update
(``SOLVER.TRAINER``).

mdistiller has a trainer class per rule (base, crd, dot); here the one trainer delegates the update to a
registered rule, so a rule such as DOT's separate momenta is one small class and works with every method.
``register_update_rule("name")`` makes ``SOLVER.TRAINER name`` valid.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Type

import torch
from torch import nn

from ...registry import Registry

#: ``SOLVER.TRAINER`` -> the rule class
UPDATE_RULES: Registry[Type["UpdateRule"]] = Registry("update rule (SOLVER.TRAINER)")


def register_update_rule(*names: str) -> Callable[[Type["UpdateRule"]], Type["UpdateRule"]]:
    """Class decorator: ``SOLVER.TRAINER`` values served by this rule."""

    def wrap(cls):
        for name in names:
            UPDATE_RULES.register(name, cls)
        return cls

    return wrap


def registered_update_rules() -> List[str]:
    """The valid values of ``SOLVER.TRAINER``."""
    return UPDATE_RULES.names()


def get_update_rule(name: str) -> Type["UpdateRule"]:
    """The rule class of ``SOLVER.TRAINER == name``; an unknown name lists the registered ones."""
    return UPDATE_RULES.get(name)


class UpdateRule:
    """Owns the optimizer and the gradient scaler; ``step(losses)`` runs backward and updates.

    ``optimizer.state_dict()`` and ``scaler.state_dict()`` are what checkpoints hold (mdistiller's
    ``optimizer`` key), so a rule's extra state belongs in its optimizer's state.
    """

    def __init__(self, cfg, params: List[nn.Parameter], device: torch.device, amp_dtype: Optional[torch.dtype]) -> None:
        self.cfg = cfg
        self.optimizer = self.build_optimizer(cfg, params)
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype is torch.float16)

    def build_optimizer(self, cfg, params: List[nn.Parameter]) -> torch.optim.Optimizer:
        """mdistiller's SGD with momentum and weight decay."""
        return torch.optim.SGD(params, lr=cfg.SOLVER.LR, momentum=cfg.SOLVER.MOMENTUM,
                               weight_decay=cfg.SOLVER.WEIGHT_DECAY)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self, losses: Dict[str, torch.Tensor]) -> None:
        """Minimise the sum of ``losses`` by one step."""
        raise NotImplementedError

    def clip_gradients(self) -> None:
        """``SOLVER.GRAD_CLIP > 0``: rescale the (unscaled) gradients of all parameters to at most that total
        norm before the optimizer step (a remedy, off by default: docs/diagnostics.md)."""
        max_norm = float(self.cfg.SOLVER.GRAD_CLIP)
        if max_norm > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, max_norm)
