"""The dataset registry: ``register_dataset("name")`` maps ``DATASET.TYPE`` to a builder.

A builder is ``builder(cfg) -> DatasetSplits``; its train set yields ``(image, target, index)`` and its
test set ``(image, target)``. ``get_dataset`` adds what a method's batch layout needs (CRD's
contrastive indices), the samplers and the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import torch
from torch.utils.data import Dataset


@dataclass
class DatasetSplits:
    train: Dataset
    test: Dataset
    num_classes: int
    #: the train set's labels in index order (CRD negatives, sanity checks)
    train_targets: Sequence[int]
    #: optional raw train images as uint8 (N, H, W, 3) for the on-device augmentation path
    train_uint8: Optional[torch.Tensor] = None
    #: normalisation of the raw images (mean, std per channel), for the on-device path
    mean_std: Optional[tuple] = None
    #: the value RandomCrop pads with (0 = black, as CIFAR's transform); the on-device path uses it too
    pad_fill: int = 0


DATASET_BUILDERS: Dict[str, Callable[..., DatasetSplits]] = {}


def register_dataset(name: str):
    """Decorator: register ``builder`` under ``DATASET.TYPE == name``."""

    def wrap(builder):
        if name in DATASET_BUILDERS:
            raise KeyError(f"dataset {name!r} is registered twice")
        DATASET_BUILDERS[name] = builder
        return builder

    return wrap


def build_splits(cfg) -> DatasetSplits:
    try:
        builder = DATASET_BUILDERS[cfg.DATASET.TYPE]
    except KeyError:
        raise KeyError(
            f"unknown DATASET.TYPE {cfg.DATASET.TYPE!r}; registered: {', '.join(sorted(DATASET_BUILDERS))}"
        ) from None
    return builder(cfg)
