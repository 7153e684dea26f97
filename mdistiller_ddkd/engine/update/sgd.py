"""mdistiller's base and CRD trainers as one update rule: one backward of the summed losses, one step."""

from __future__ import annotations

from typing import Dict

import torch

from .base import UpdateRule, register_update_rule


@register_update_rule("base", "crd")
class SumOfLosses(UpdateRule):
    """One backward of the summed losses, one optimizer step (mdistiller's base and CRD trainers)."""

    def step(self, losses: Dict[str, torch.Tensor]) -> None:
        loss = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.clip_gradients()
        self.scaler.step(self.optimizer)
        self.scaler.update()
