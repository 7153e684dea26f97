"""Per-term gradient norms: which loss term drives the student, measured with one backward per term."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn


@contextmanager
def capture_output(module: nn.Module) -> Iterator[List[torch.Tensor]]:
    """The logits a model returns (its output, or the first item of an ``(logits, feats)`` output) while
    inside the block, collected in a list."""
    captured: List[torch.Tensor] = []

    def keep(_module, _inputs, output):
        captured.append(output[0] if isinstance(output, (tuple, list)) else output)

    handle = module.register_forward_hook(keep)
    try:
        yield captured
    finally:
        handle.remove()


@dataclass
class GradientReport:
    """Per-term gradient norms w.r.t. the parameters (``on_params``) and at a tensor (``at``), each with
    ``total`` (the summed loss), and each term's cosine with the cross-entropy term's parameter gradient."""

    on_params: Dict[str, float] = field(default_factory=dict)
    at: Dict[str, float] = field(default_factory=dict)
    cosine_with_ce: Dict[str, float] = field(default_factory=dict)

    def scalars(self, at_name: str = "logits") -> Dict[str, float]:
        """Flat names: ``grad_<term>``, ``grad_<at_name>_<term>``, ``grad_cos_ce_<term>``."""
        out = {f"grad_{k}": v for k, v in self.on_params.items()}
        out.update({f"grad_{at_name}_{k}": v for k, v in self.at.items()})
        out.update({f"grad_cos_ce_{k}": v for k, v in self.cosine_with_ce.items()})
        return out


def _flat(grads: Sequence[Optional[torch.Tensor]], like: Sequence[torch.Tensor]) -> torch.Tensor:
    """One float64 vector of the gradients (zeros where there is no path)."""
    return torch.cat([(g if g is not None else torch.zeros_like(p)).detach().double().flatten()
                      for g, p in zip(grads, like)]) if like else torch.zeros(0, dtype=torch.float64)


def term_gradient_norms(losses: Dict[str, torch.Tensor], params: Sequence[nn.Parameter],
                        at: Optional[torch.Tensor] = None, ce_key: str = "loss_ce") -> GradientReport:
    """``‖∂ term/∂ params‖`` for every term of ``losses`` (one ``autograd.grad`` each, graph retained), plus
    ``total``: the norm of their summed gradients (= the gradient of the summed loss the update follows).

    With ``at`` (e.g. the student's logits) also each term's gradient norm with respect to that tensor,
    which tells where in the network a term's gradient enters. When ``losses`` has ``ce_key``, the cosine of
    every other term's parameter gradient with it (-1: the term pulls against the labels; 0 when either
    gradient is zero). ``.grad`` is not touched.
    """
    params = [p for p in params if p.requires_grad]
    inputs = list(params) + ([at] if at is not None else [])
    report = GradientReport()
    vectors: Dict[str, torch.Tensor] = {}
    summed_at: Optional[torch.Tensor] = None
    for name, loss in losses.items():
        if not loss.requires_grad:
            grads: List[Optional[torch.Tensor]] = [None] * len(inputs)
        else:
            grads = list(torch.autograd.grad(loss.float(), inputs, retain_graph=True, allow_unused=True))
        vectors[name] = _flat(grads[:len(params)], params)
        report.on_params[name] = float(vectors[name].norm())
        if at is not None:
            g_at = _flat(grads[len(params):], [at])
            report.at[name] = float(g_at.norm())
            summed_at = g_at if summed_at is None else summed_at + g_at
    total = sum(vectors.values()) if vectors else torch.zeros(0, dtype=torch.float64)
    report.on_params["total"] = float(total.norm()) if len(vectors) else 0.0
    if summed_at is not None:
        report.at["total"] = float(summed_at.norm())
    if ce_key in vectors:
        ce = vectors[ce_key]
        for name, vector in vectors.items():
            if name != ce_key:
                denom = float(vector.norm() * ce.norm())
                report.cosine_with_ce[name] = float(vector @ ce) / denom if denom > 0 else 0.0
    return report


def distiller_gradient_norms(distiller: nn.Module, batch: Dict, autocast: Callable = nullcontext) -> GradientReport:
    """Per-term gradient norms of one ``forward_train`` of ``distiller`` on ``batch`` (keyword arguments),
    w.r.t. the student's parameters and at the student's logits.

    Calls ``forward_train`` in whatever mode the distiller is in (train mode: what a training step sees);
    the caller isolates RNG and buffers (``isolation.isolated``).
    """
    with capture_output(distiller.student) as captured, autocast():
        _, losses = distiller.forward_train(**batch)
    logits = captured[0] if captured else None
    return term_gradient_norms(losses, list(distiller.student.parameters()), at=logits)
