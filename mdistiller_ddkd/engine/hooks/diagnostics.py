"""The ``LOG.DIAGNOSTICS`` trainer hook: gap metrics and per-term gradient norms on a fixed probe batch,
every ``LOG.DIAGNOSTICS_FREQ`` steps (TensorBoard ``diag_step/...``) and at each epoch's end (``diag_...``
columns of results.json, the worklog and TensorBoard). Training is bit-identical with it on or off."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch
from torch.utils.data import Dataset, default_collate

from ...diagnostics.gap import GapReport, gap_metrics, is_diffusion_distiller, student_logit_metrics
from ...diagnostics.gradients import distiller_gradient_norms
from ...diagnostics.isolation import PROBE_SEED, isolated
from ...errors import ConfigError
from ...rng import rng_state, set_rng_state
from .base import StepState, TrainerHook


def probe_indices(num_samples: int, size: int) -> List[int]:
    """``size`` training-set indices spread evenly over ``0..num_samples-1`` (all of them when fewer)."""
    size = min(size, num_samples)
    return [round(k * (num_samples - 1) / max(size - 1, 1)) for k in range(size)]


def probe_batch(trainer, size: int) -> Dict[str, object]:
    """A fixed train batch (the trainer's keyword arguments, on its device) read without touching the
    training RNGs: DataLoader datasets with their train transform under a fixed seed, the on-device loader
    (``DATASET.GPU_AUGMENT``) without augmentation."""
    loader = trainer.train_loader
    state = rng_state()
    try:
        torch.manual_seed(PROBE_SEED)
        if isinstance(getattr(loader, "dataset", None), Dataset):
            indices = probe_indices(len(loader.dataset), size)
            batch = default_collate([loader.dataset[i] for i in indices])
        else:  # DeviceAugmentLoader: the uint8 images, normalised as its batches are
            idx = torch.tensor(probe_indices(len(loader.images), size), device=loader.images.device)
            image = loader.images[idx].permute(0, 3, 1, 2).float().sub(loader.mean).div(loader.std)
            batch = (image, loader.targets[idx], idx)
    finally:
        set_rng_state(state)
    kwargs = trainer.batch_to_kwargs(batch, epoch=1)
    kwargs.pop("epoch")
    return kwargs


def measure(trainer, batch: Dict[str, object], epoch: int) -> Tuple[Dict[str, float], Optional[GapReport]]:
    """``(scalars, gap report or None)`` of the distiller on ``batch``: per-term gradient norms for every
    method (``grad_<term>``, ``grad_total``; ``grad_logits_<term>`` at the student's logits;
    ``grad_cos_ce_<term>``: cosine with the cross-entropy gradient) and, for DDKD/DIFFKD, the gap metrics
    (other methods with a teacher: the student's logit metrics). Both in train mode, isolated
    (``isolation.isolated``)."""
    distiller = trainer.distiller
    with isolated(distiller, train=True):
        scalars = distiller_gradient_norms(distiller, {**batch, "epoch": epoch}, trainer.autocast).scalars()
    report = None
    if is_diffusion_distiller(distiller):
        with isolated(distiller, train=True), trainer.autocast():
            report = gap_metrics(distiller, batch["image"], batch["target"])
        scalars.update(report.scalars)
    elif getattr(distiller, "teacher", None) is not None:
        with isolated(distiller, train=True), trainer.autocast():
            scalars.update(student_logit_metrics(distiller, batch["image"], batch["target"]))
    return scalars, report


class DiagnosticsHook(TrainerHook):
    """Measures on the probe batch after every ``freq``-th step's update and at each epoch's end."""

    def __init__(self, freq: int, batch_size: int) -> None:
        if batch_size < 2:
            raise ConfigError(f"LOG.DIAGNOSTICS_BATCH must be at least 2 (BatchNorm in train mode), got {batch_size}")
        self.freq = int(freq)
        self.batch_size = int(batch_size)
        self.batch: Dict[str, object] = {}

    def before_train(self, trainer) -> None:
        self.batch = probe_batch(trainer, self.batch_size)

    def after_step(self, trainer, state: StepState) -> None:
        if self.freq <= 0 or (state.global_step + 1) % self.freq:
            return
        scalars, report = measure(trainer, self.batch, state.epoch)
        if trainer.writer is not None:
            for key, value in scalars.items():
                trainer.writer.add_scalar(f"diag_step/{key}", value, state.global_step)

    def epoch_record(self, trainer, epoch: int, record: Dict) -> None:
        scalars, report = measure(trainer, self.batch, epoch)
        record.update({f"diag_{k}": v for k, v in scalars.items()})
        if report is None:
            return
        record.update({f"diag_{k}": v for k, v in report.histograms.items()})
        if trainer.writer is not None:
            for name, gamma in report.gammas.items():
                trainer.writer.add_histogram(f"diag_gamma_{name}", gamma.numpy(), epoch, bins="auto")


def diagnostics_hook(cfg) -> Optional[DiagnosticsHook]:
    """The diagnostics hook when ``LOG.DIAGNOSTICS`` is on."""
    if not cfg.LOG.DIAGNOSTICS:
        return None
    return DiagnosticsHook(cfg.LOG.DIAGNOSTICS_FREQ, cfg.LOG.DIAGNOSTICS_BATCH)
