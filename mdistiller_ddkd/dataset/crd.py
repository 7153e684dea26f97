"""CRD's train-set wrapper: every sample also carries the indices to contrast it with.

``ContrastiveDataset(base, targets, num_classes, num_negatives, mode)`` wraps a dataset whose items are
``(image, target, index)`` and returns ``(image, target, index, contrastive_index)``, where
``contrastive_index`` is a LongTensor of length ``K + 1``: the positive (the sample's own index, whose
memory-bank row holds the other network's embedding of the same image) followed by ``K`` negatives —
drawn from samples of *other classes* (``mode="exact"``) or from any sample except the anchor itself
(``mode="relax"``). Negatives are distinct when the pool is at least ``K`` large, drawn with replacement
otherwise. No per-class index lists are stored: samples are sorted by class once and a negative is a
position in that order that skips the anchor's class block (resp. the anchor).

Randomness: by default torch's global RNG. In training the trainer's loader reads this dataset through
``sampling.SeededSamples``, which seeds that RNG by (seed, epoch, index) for each item, so the negatives
are a function of the sample and epoch — the same with any number of workers and after a resume. A
``generator`` may be passed for single-process use (``num_workers=0``); worker processes would each copy it
and repeat its draws.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError

MODES = ("exact", "relax")


class ContrastiveDataset(Dataset):
    """Adds CRD's ``contrastive_index`` (positive + K negatives) to ``(image, target, index)`` items."""

    def __init__(
        self,
        base: Dataset,
        targets: Sequence[int],
        num_classes: int,
        num_negatives: int,
        mode: str = "exact",
        generator: Optional[torch.Generator] = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"CRD.MODE must be one of {MODES}, got {mode!r}")
        if num_negatives < 1:
            raise ConfigError(f"CRD.NCE.K must be positive, got {num_negatives}")
        targets_t = torch.as_tensor(list(targets), dtype=torch.long)
        if len(targets_t) != len(base):
            raise ValueError(f"{len(base)} samples but {len(targets_t)} targets")
        if len(targets_t) and (targets_t.min() < 0 or targets_t.max() >= num_classes):
            raise ValueError(f"targets outside [0, {num_classes})")
        self.base = base
        self.targets = targets_t
        self.num_classes = num_classes
        self.num_negatives = int(num_negatives)
        self.mode = mode
        self.generator = generator
        # samples sorted by class; class c occupies positions [start[c], start[c] + count[c])
        self.order = torch.argsort(targets_t, stable=True)
        counts = torch.bincount(targets_t, minlength=num_classes)
        self.class_start = torch.cumsum(counts, 0) - counts
        self.class_count = counts
        num_data = len(targets_t)
        if mode == "exact" and bool((counts == num_data).any()):
            raise ConfigError("CRD exact mode needs at least two classes in the train set")
        if mode == "relax" and num_data < 2:
            raise ConfigError("CRD relax mode needs at least two samples")

    def __len__(self) -> int:
        return len(self.base)

    def _draw_positions(self, pool_size: int) -> torch.Tensor:
        """``K`` positions in ``[0, pool_size)``: distinct when possible, else with replacement."""
        k = self.num_negatives
        if k <= pool_size:
            return torch.randperm(pool_size, generator=self.generator)[:k]
        return torch.randint(pool_size, (k,), generator=self.generator)

    def negatives(self, index: int) -> torch.Tensor:
        """The ``K`` negative indices for sample ``index`` (freshly drawn on every call)."""
        if self.mode == "exact":
            c = int(self.targets[index])
            start, count = int(self.class_start[c]), int(self.class_count[c])
            pos = self._draw_positions(len(self.targets) - count)
            pos = pos + count * (pos >= start).long()  # skip the anchor's class block
            return self.order[pos]
        pos = self._draw_positions(len(self.targets) - 1)
        return pos + (pos >= index).long()  # skip the anchor itself

    def __getitem__(self, index: int):
        image, target, base_index = self.base[index]
        contrastive_index = torch.cat([torch.tensor([index], dtype=torch.long), self.negatives(index)])
        return image, target, base_index, contrastive_index
