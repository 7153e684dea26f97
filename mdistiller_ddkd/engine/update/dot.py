"""DOT (Zhao et al., "DOT: A Distillation-Oriented Trainer", ICCV 2023) as an update rule of the one trainer.

DOT keeps two momentum buffers per parameter: one for the gradient of the task loss (``loss_ce``) and
one for the gradient of the distillation loss (the sum of every other term). With ``m = SOLVER.MOMENTUM``
and ``δ = SOLVER.DOT.DELTA`` the task buffer decays with ``m - δ`` and the distillation buffer with
``m + δ``, so the distillation gradient dominates the update direction. For a parameter ``p`` with task
gradient ``g_t``, distillation gradient ``g_d``, learning rate ``lr`` and weight decay ``wd``:

    both gradients:   b_t <- (m - δ) b_t + (g_t + wd p);  b_d <- (m + δ) b_d + g_d;   p <- p - lr b_t - lr b_d
    task only:        b_t <- m b_t + (g_t + wd p);                                     p <- p - lr b_t
    distillation only:                                    b_d <- m b_d + (g_d + wd p); p <- p - lr b_d

(``m`` is ``((m - δ) + (m + δ)) / 2`` as mdistiller computes it; a buffer starts as its first gradient;
weight decay counts once, in the task buffer when there is one.) With no distillation term every
parameter is "task only": DOT is then plain SGD with momentum ``m``, as it is with no task term.

Config (mdistiller's ``configs/cifar100/dot/res32x4_res8x4.yaml``)::

    SOLVER:
      TRAINER: "dot"
      WEIGHT_DECAY: 0.0005
      DOT:
        DELTA: 0.075

Both buffers live in the optimizer state under mdistiller's names (``momentum_buffer``,
``momentum_kd_buffer``; param-group keys ``momentum`` = m - δ and ``momentum_kd`` = m + δ), so checkpoints
hold them and ``--resume`` continues exactly.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ...errors import ConfigError
from .base import UpdateRule, register_update_rule

#: the losses-dict entry that is the task loss; every other entry is distillation
TASK_LOSS = "loss_ce"


def split_losses(losses: Dict[str, Tensor]) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """``(task, distillation)``: ``losses["loss_ce"]`` and the sum of the other terms; None for a part that
    is absent or carries no gradient (a constant term cannot move any parameter)."""
    task = losses.get(TASK_LOSS)
    if task is not None and not task.requires_grad:
        task = None
    others = [v for k, v in losses.items() if k != TASK_LOSS and v.requires_grad]
    return task, (sum(others) if others else None)


def _accumulate(state: Dict, key: str, grad: Tensor, momentum: float, dampening: float) -> Tensor:
    """The momentum buffer ``state[key]`` after adding ``grad`` (created as a copy of the first one)."""
    buf = state.get(key)
    if buf is None:
        buf = state[key] = torch.clone(grad).detach()
    else:
        buf.mul_(momentum).add_(grad, alpha=1 - dampening)
    return buf


class DistillationOrientedSGD(torch.optim.Optimizer):
    """SGD with separate momenta for task and distillation gradients (mdistiller's
    ``DistillationOrientedTrainer``).

    Usage: backward the distillation loss, ``stash_distillation_grads()``, zero the gradients, backward the
    task loss, ``step()``. Parameters with only one kind of gradient use the mean momentum.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, momentum_kd: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0) -> None:
        for name, value in (("lr", lr), ("momentum", momentum), ("momentum_kd", momentum_kd),
                            ("weight_decay", weight_decay)):
            if value < 0.0:
                raise ValueError(f"DOT: invalid {name} {value} (must be >= 0)")
        defaults = dict(lr=lr, momentum=momentum, momentum_kd=momentum_kd, dampening=dampening,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)
        self._distill_grads: Dict[Tensor, Tensor] = {}

    @torch.no_grad()
    def stash_distillation_grads(self) -> None:
        """Take every parameter's current ``.grad`` as its distillation gradient for the next ``step``
        (mdistiller's ``step_kd``); ``zero_grad(set_to_none=True)`` afterwards leaves the stash intact."""
        self._distill_grads = {p: p.grad for group in self.param_groups for p in group["params"]
                               if p.grad is not None}

    def drop_distillation_grads(self) -> None:
        """Forget stashed distillation gradients (a skipped step must not leak them into the next one)."""
        self._distill_grads = {}

    @torch.no_grad()
    def step(self, closure=None):
        """Update every parameter from its task gradient (``.grad``) and its stashed distillation gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        distill, self._distill_grads = self._distill_grads, {}
        for group in self.param_groups:
            for p in group["params"]:
                task_grad, distill_grad = p.grad, distill.get(p)
                if task_grad is not None or distill_grad is not None:
                    self._update(p, task_grad, distill_grad, group)
        return loss

    def _update(self, p: Tensor, task_grad: Optional[Tensor], distill_grad: Optional[Tensor], group: Dict) -> None:
        lr, wd, dampening = group["lr"], group["weight_decay"], group["dampening"]
        mean_momentum = (group["momentum"] + group["momentum_kd"]) / 2.0
        state = self.state[p]
        # mdistiller keeps no task buffer at all when m - δ is 0 (so task-only parameters lose their mean
        # momentum δ too); here the buffer always exists, which is the same for m - δ > 0
        if task_grad is not None:
            grad = task_grad.add(p, alpha=wd) if wd else task_grad
            momentum = group["momentum"] if distill_grad is not None else mean_momentum
            p.add_(_accumulate(state, "momentum_buffer", grad, momentum, dampening), alpha=-lr)
        if distill_grad is not None:
            # mdistiller skips the weight decay of distillation-only parameters on their first step (its
            # buffer starts from the bare gradient); here weight decay applies on every step, as for SGD
            grad = distill_grad.add(p, alpha=wd) if wd and task_grad is None else distill_grad
            momentum = group["momentum_kd"] if task_grad is not None else mean_momentum
            p.add_(_accumulate(state, "momentum_kd_buffer", grad, momentum, dampening), alpha=-lr)


class _DistillationStage(torch.optim.Optimizer):
    """The distillation half of a DOT step, as an optimizer over the same parameters: the gradient scaler
    then unscales and inf-checks the distillation gradients on their own (``GradScaler.step(stage)``), and
    its ``step`` stashes them in the DOT optimizer. It holds no state of its own."""

    def __init__(self, target: DistillationOrientedSGD) -> None:
        super().__init__([p for group in target.param_groups for p in group["params"]], {})
        self.target = target

    def step(self, closure=None) -> bool:
        self.target.stash_distillation_grads()
        return True


def _world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


@register_update_rule("dot", "crd_dot")
class DOTUpdate(UpdateRule):
    """Two backward passes per step (distillation with ``retain_graph``, then task) into the
    :class:`DistillationOrientedSGD` update, with any method's losses dict and with fp16 gradient scaling."""

    def __init__(self, cfg, params: List[nn.Parameter], device: torch.device, amp_dtype: Optional[torch.dtype]) -> None:
        if _world_size() > 1:
            raise ConfigError(
                "SOLVER.TRAINER dot needs two backward passes per step, which DistributedDataParallel cannot "
                "synchronise; train DOT in one process (without torchrun), or use SOLVER.TRAINER base"
            )
        if float(cfg.SOLVER.GRAD_CLIP) > 0:
            raise ConfigError("SOLVER.GRAD_CLIP is not defined for SOLVER.TRAINER dot (its task and distillation "
                             "gradients take separate momenta); set SOLVER.GRAD_CLIP 0 or use SOLVER.TRAINER base")
        super().__init__(cfg, params, device, amp_dtype)
        self.distill_stage = _DistillationStage(self.optimizer)

    def build_optimizer(self, cfg, params: List[nn.Parameter]) -> torch.optim.Optimizer:
        """mdistiller's DOT optimizer: momenta ``MOMENTUM - DELTA`` (task) and ``MOMENTUM + DELTA``."""
        momentum, delta = cfg.SOLVER.MOMENTUM, cfg.SOLVER.DOT.DELTA
        if not all(0.0 <= m < 1.0 for m in (momentum - delta, momentum + delta)):
            raise ConfigError(
                f"SOLVER.DOT.DELTA {delta} with SOLVER.MOMENTUM {momentum} gives momenta {momentum - delta:g} (task) "
                f"and {momentum + delta:g} (distillation); both must lie in [0, 1): choose |DELTA| <= MOMENTUM "
                f"and MOMENTUM + |DELTA| < 1"
            )
        return DistillationOrientedSGD(params, lr=cfg.SOLVER.LR, momentum=momentum - delta,
                                       momentum_kd=momentum + delta, weight_decay=cfg.SOLVER.WEIGHT_DECAY)

    def step(self, losses: Dict[str, Tensor]) -> None:
        """Distillation backward and stash, task backward, one DOT update (skipped when fp16 gradients
        overflow, as ``GradScaler`` skips a step)."""
        task, distill = split_losses(losses)
        optimizer, scaler = self.optimizer, self.scaler
        optimizer.drop_distillation_grads()
        optimizer.zero_grad(set_to_none=True)
        if task is None and distill is None:
            return
        if distill is not None:
            scaler.scale(distill).backward(retain_graph=task is not None)
            if scaler.step(self.distill_stage) is None:  # inf/NaN in the distillation gradients
                optimizer.zero_grad(set_to_none=True)
                scaler.update()
                return
            optimizer.zero_grad(set_to_none=True)
        if task is not None:
            scaler.scale(task).backward()
            scaler.step(optimizer)
        else:
            optimizer.step()
        optimizer.drop_distillation_grads()
        scaler.update()
