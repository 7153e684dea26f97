"""Accuracy and loss bookkeeping: top-k hits, the evaluation loop, an epoch's running sums."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from .distributed import Runtime, all_reduce_sum


def topk_correct(logits: torch.Tensor, target: torch.Tensor, ks: Sequence[int] = (1, 5)) -> List[torch.Tensor]:
    """Number of samples whose target is among the top-k predictions, for each k."""
    maxk = min(max(ks), logits.shape[1])
    pred = logits.topk(maxk, dim=1).indices
    hits = pred.eq(target[:, None])
    return [hits[:, : min(k, maxk)].any(dim=1).sum() for k in ks]


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, runtime: Optional[Runtime] = None,
             autocast=nullcontext, memory_format=torch.contiguous_format) -> Dict[str, float]:
    """Top-1/top-5 accuracy (%) and mean cross-entropy of ``model(image=...)`` (a distiller in eval mode
    returns the student's logits) over ``loader``; summed over ranks, so it equals a single-process
    evaluation of the same weights."""
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top1, top5, count
    for image, target in loader:
        image = image.to(device, non_blocking=True).contiguous(memory_format=memory_format)
        target = target.to(device, non_blocking=True)
        with autocast():
            logits = model(image=image)
        logits = logits.float()
        top1, top5 = topk_correct(logits, target, (1, 5))
        loss = nn.functional.cross_entropy(logits, target, reduction="sum")
        totals += torch.stack([loss.double(), top1.double(), top5.double(),
                               torch.tensor(float(target.shape[0]), dtype=torch.float64, device=device)])
    if runtime is not None:
        totals = all_reduce_sum(totals, runtime)
    count = max(float(totals[3]), 1.0)
    return {"test_acc": 100.0 * float(totals[1]) / count, "test_acc_top5": 100.0 * float(totals[2]) / count,
            "test_loss": float(totals[0]) / count}


@dataclass
class EpochSums:
    """This rank's running sums over an epoch: loss·batch, correct, count (float64) and each loss term·batch;
    saved in a mid-epoch checkpoint so a resumed epoch reports the same means."""

    totals: torch.Tensor
    terms: Dict[str, float]

    @classmethod
    def zeros(cls, device: torch.device) -> "EpochSums":
        return cls(torch.zeros(3, dtype=torch.float64, device=device), {})

    @classmethod
    def from_state(cls, state: Dict, device: torch.device) -> "EpochSums":
        return cls(state["totals"].to(device), dict(state["terms"]))

    def state(self) -> Dict:
        return {"totals": self.totals.detach().cpu(), "terms": dict(self.terms)}

    def add(self, loss: torch.Tensor, logits: torch.Tensor, target: torch.Tensor, losses: Dict) -> None:
        batch_size = target.shape[0]
        self.totals += torch.stack([
            loss.detach().double() * batch_size,
            topk_correct(logits.detach(), target, (1,))[0].double(),
            torch.tensor(float(batch_size), dtype=torch.float64, device=self.totals.device),
        ])
        for k, v in losses.items():
            self.terms[k] = self.terms.get(k, 0.0) + float(v.detach()) * batch_size

    def record(self, lr: float, runtime: Runtime) -> Dict[str, float]:
        """The epoch's ``lr``, ``train_loss``, ``train_acc`` and ``train_<term>`` means over every rank."""
        totals = all_reduce_sum(self.totals, runtime)
        count = max(float(totals[2]), 1.0)
        return {"lr": lr, "train_loss": float(totals[0]) / count, "train_acc": 100.0 * float(totals[1]) / count,
                **{f"train_{k}": v / count for k, v in self.terms.items()}}
