"""The representation gap of DDKD/DIFFKD, raw vs denoised, on one batch.

"Raw" is the branch's own projections with zero DDIM steps and no noise (``DiffusionBranch.transform(x,
denoise=False)``), "denoised" what the distillation term sees (``transform(x)``); both are compared with the
teacher's latent (feature branch) or logits (logit branch). The student's own logits are reported too.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

from ..distillers.ddkd import DDKD
from .gradients import distiller_gradient_norms
from .isolation import isolated
from .representation_metrics import (
    bucket_edges,
    histogram_counts,
    kl_teacher_student,
    linear_cka,
    mean_row_norm,
    mse,
    summary,
    top1_accuracy,
    top1_agreement,
)

#: timestep ranges of the per-bucket diffusion loss
TIMESTEP_BUCKETS = 4


@dataclass
class GapReport:
    """Scalar metrics (flat names), γ histogram counts and the raw γ values of one batch."""

    scalars: Dict[str, float] = field(default_factory=dict)
    histograms: Dict[str, List[int]] = field(default_factory=dict)
    gammas: Dict[str, torch.Tensor] = field(default_factory=dict)


def is_diffusion_distiller(distiller: nn.Module) -> bool:
    """Whether ``distiller`` is DDKD or DIFFKD (or a subclass): the methods with a denoiser to measure."""
    return isinstance(distiller, DDKD)


def _gamma(report: GapReport, name: str, gamma: Optional[torch.Tensor]) -> None:
    if gamma is None:
        return
    for key, value in summary(gamma).items():
        report.scalars[f"gamma_{name}_{key}"] = value
    report.histograms[f"gamma_{name}_hist"] = histogram_counts(gamma)
    report.gammas[name] = gamma.detach().float().cpu()


def _diffusion_by_bucket(report: GapReport, name: str, branch, target: torch.Tensor, buckets: int) -> None:
    """Eq. 5's loss on ``target`` with t drawn uniformly inside each timestep range."""
    edges = bucket_edges(branch.schedule.num_timesteps, buckets)
    for lo, hi in zip(edges[:-1], edges[1:]):
        t = torch.randint(lo, hi, (target.shape[0],), device=target.device)
        report.scalars[f"diff_{name}_t{lo}_{hi}"] = float(branch.diffusion_loss(target, t))


def _feature_branch(report: GapReport, distiller: DDKD, feats_s: Dict, feats_t: Dict, buckets: int) -> None:
    feat_s, feat_t, latent_t, reconstruction = distiller.feature_pair(feats_s, feats_t)
    raw, _ = distiller.feat_branch.transform(feat_s, denoise=False)
    denoised, gamma = distiller.feat_branch.transform(feat_s)
    for side, value in (("raw", raw), ("denoised", denoised)):
        report.scalars[f"feat_mse_{side}"] = mse(value, latent_t)
        report.scalars[f"feat_cka_{side}"] = linear_cka(value, latent_t)
    if reconstruction is not None:
        report.scalars["ae_mse"] = mse(reconstruction, feat_t)
        report.scalars["ae_cka"] = linear_cka(reconstruction, feat_t)
    _gamma(report, "feat", gamma)
    _diffusion_by_bucket(report, "feat", distiller.feat_branch, latent_t, buckets)


def _logit_branch(report: GapReport, distiller: DDKD, logits_s: torch.Tensor, logits_t: torch.Tensor,
                  target: torch.Tensor, buckets: int) -> None:
    sides = {"student": logits_s}
    if distiller.logit_branch is not None:
        sides["raw"] = distiller.logit_transform(logits_s, denoise=False)[0]
        sides["denoised"], gamma = distiller.logit_transform(logits_s)
        _gamma(report, "logit", gamma)
        _diffusion_by_bucket(report, "logit", distiller.logit_branch, distiller.logit_diffusion_target(logits_t),
                             buckets)
    for side, logits in sides.items():
        report.scalars[f"logit_kl_{side}"] = kl_teacher_student(logits, logits_t, distiller.logit_temperature)
        report.scalars[f"logit_agree_{side}"] = top1_agreement(logits, logits_t)
        report.scalars[f"logit_acc_{side}"] = top1_accuracy(logits, target)
        report.scalars[f"logit_norm_{side}"] = mean_row_norm(logits)
    report.scalars["logit_norm_teacher"] = mean_row_norm(logits_t)


@torch.no_grad()
def student_logit_metrics(distiller: nn.Module, image: torch.Tensor, target: torch.Tensor) -> Dict[str, float]:
    """For any method with a teacher: the student's top-1 agreement with the teacher, top-1 accuracy and the
    mean logit norms of both (the scale a distillation term may inflate)."""
    logits_s = distiller.student(image)[0].float()
    logits_t = distiller.teacher_forward(image)[0].float()
    return {"logit_agree_student": top1_agreement(logits_s, logits_t),
            "logit_acc_student": top1_accuracy(logits_s, target),
            "logit_norm_student": mean_row_norm(logits_s), "logit_norm_teacher": mean_row_norm(logits_t)}


@torch.no_grad()
def gap_metrics(distiller: DDKD, image: torch.Tensor, target: torch.Tensor,
                buckets: int = TIMESTEP_BUCKETS) -> GapReport:
    """Raw-vs-denoised gap metrics of ``distiller`` on one batch, in the mode the distiller is in (the
    caller isolates RNG and buffers: ``diagnostics.isolation.isolated``)."""
    if not is_diffusion_distiller(distiller):
        raise ValueError(f"gap metrics need a DDKD or DIFFKD distiller, got {type(distiller).__name__}")
    report = GapReport()
    logits_s, feats_s = distiller.student(image)
    logits_t, feats_t = distiller.teacher_forward(image)
    logits_s, logits_t = logits_s.float(), logits_t.float()
    if distiller.feat_branch is not None:
        _feature_branch(report, distiller, feats_s, feats_t, buckets)
    _logit_branch(report, distiller, logits_s, logits_t, target, buckets)
    return report


def gap_over_batches(distiller: DDKD, batches: Iterable[Tuple[torch.Tensor, torch.Tensor]], device: torch.device,
                     train_mode: bool = True, epoch: int = 1, autocast: Optional[Callable] = None,
                     gradients: bool = True) -> Dict[str, object]:
    """Gap metrics (and per-term gradient norms) over ``(image, target)`` batches, each isolated.

    Returns ``{"images", "scalars", "gamma"}``: scalars are means over batches weighted by their size (KL,
    agreement, accuracy and MSE are then exact means over the images; CKA is the mean of per-batch CKA);
    ``gamma`` holds each branch's summary and histogram over every image. ``train_mode`` False uses the
    BatchNorm running statistics instead of each batch's own.
    """
    autocast = autocast or nullcontext
    sums: Dict[str, float] = {}
    gammas: Dict[str, List[torch.Tensor]] = {}
    count = 0
    for image, target in batches:
        image, target = image.to(device), target.to(device)
        n = int(target.shape[0])
        if n < 2:  # BatchNorm with batch statistics needs two samples
            continue
        with isolated(distiller, train=train_mode), autocast():
            report = gap_metrics(distiller, image, target)
        scalars = dict(report.scalars)
        if gradients:
            with isolated(distiller, train=True):
                scalars.update(distiller_gradient_norms(
                    distiller, {"image": image, "target": target, "epoch": epoch}, autocast).scalars())
        for key, value in scalars.items():
            if not key.startswith("gamma_"):
                sums[key] = sums.get(key, 0.0) + value * n
        for name, values in report.gammas.items():
            gammas.setdefault(name, []).append(values)
        count += n
    gamma = {}
    for name, parts in gammas.items():
        values = torch.cat(parts)
        gamma[name] = {**summary(values), "hist": histogram_counts(values)}
    return {"images": count, "scalars": {k: v / max(count, 1) for k, v in sums.items()}, "gamma": gamma}
