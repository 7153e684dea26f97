"""Datasets and loaders, with mdistiller's ``get_dataset(cfg)``.

``get_dataset(cfg)`` returns ``(train_loader, val_loader, num_data, num_classes)``; train batches are
``(image, target, index)`` (CRD: ``(image, target, index, contrastive_index)``), test batches
``(image, target)``. Under torch.distributed each rank gets its share of both sets. A method that needs
more per sample (CRD's negatives) passes ``wrap_train_set``; this package knows nothing of the methods.
Train order and augmentation are functions of (seed, epoch, position) (``sampling.py``): a resumed run
sees the same batches whatever ``DATASET.NUM_WORKERS``; ``set_train_position(loader, epoch, step)``
selects an epoch and where in it to start.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..errors import ConfigError
from ..signals import ignore_stop_signals

# the built-in datasets register themselves (the composition root of the dataset registry)
from . import cifar100, fashion_mnist, imagenet, synthetic, tiny_imagenet  # noqa: F401
from .device_augment import DeviceAugmentLoader
from .registry import (
    DATASETS,
    CropFlip,
    DatasetInfo,
    DatasetSplits,
    build_splits,
    dataset_info,
    register_dataset,
    registered_datasets,
)
from .sampling import EpochSampler, SampleKey, SeededSamples, epoch_order, set_train_position, share_size

#: a method's train-set wrapper: ``wrap(splits, cfg) -> Dataset`` (None: the dataset's own train set)
TrainSetWrapper = Callable[[DatasetSplits, object], Dataset]



class ShardSampler(Sampler):
    """Every ``world_size``-th index from ``rank``, in order, without padding (exact distributed eval)."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _dist_info() -> Tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _worker_init(worker_id: int) -> None:
    """Workers leave SIGTERM / SIGINT to the main process, which stops after a checkpoint."""
    ignore_stop_signals()


def per_rank_batch_size(global_batch_size: int, world_size: int) -> int:
    """``SOLVER.BATCH_SIZE`` is the global batch (as with mdistiller's DataParallel): each of the
    ``world_size`` processes takes an equal share, so a config trains the same recipe on any GPU count."""
    if global_batch_size % world_size:
        raise ConfigError(f"SOLVER.BATCH_SIZE {global_batch_size} is the global batch and must be divisible by the "
                         f"number of processes ({world_size})")
    return global_batch_size // world_size


def get_dataset(cfg, device: Optional[torch.device] = None, wrap_train_set: Optional[TrainSetWrapper] = None):
    """``(train_loader, val_loader, num_data, num_classes)`` for ``cfg.DATASET``.

    ``device`` is needed only for ``DATASET.GPU_AUGMENT`` (the train set then lives on it);
    ``wrap_train_set`` is the method's train-set wrapper (``Distiller.wrap_train_set``; it returns None
    when the method trains on the dataset's own train set). Batch sizes in the config are global; under
    torch.distributed each rank loads its share.
    """
    splits: DatasetSplits = build_splits(cfg)
    rank, world_size = _dist_info()
    batch_size = per_rank_batch_size(cfg.SOLVER.BATCH_SIZE, world_size)
    test_batch_size = max(1, -(-cfg.DATASET.TEST.BATCH_SIZE // world_size))
    num_data = len(splits.train)
    seed = cfg.EXPERIMENT.SEED
    wrapped = wrap_train_set(splits, cfg) if wrap_train_set is not None else None

    if cfg.DATASET.GPU_AUGMENT:
        if wrapped is not None:
            raise ConfigError(f"DATASET.GPU_AUGMENT cannot serve {cfg.DISTILLER.TYPE}, whose train batches carry "
                             f"per-sample extras from a dataset wrapper; set DATASET.GPU_AUGMENT False")
        if splits.train_uint8 is None:
            raise ConfigError(f"DATASET.GPU_AUGMENT is not available for DATASET.TYPE {cfg.DATASET.TYPE}")
        mean, std = splits.mean_std
        train_loader = DeviceAugmentLoader(
            splits.train_uint8, splits.train_targets, batch_size, mean, std,
            device or torch.device("cpu"), seed=seed, rank=rank, world_size=world_size, augment=splits.augment,
        )
    else:
        train_set = SeededSamples(splits.train if wrapped is None else wrapped, seed)
        train_loader = DataLoader(
            train_set, batch_size=batch_size, sampler=EpochSampler(len(train_set), seed, rank, world_size),
            # a last batch of one image breaks BatchNorm in training (e.g. DDKD's logit branch): drop only that
            drop_last=share_size(len(train_set), world_size) % batch_size == 1,
            num_workers=cfg.DATASET.NUM_WORKERS, pin_memory=torch.cuda.is_available(),
            # the loader's own generator (unused by EpochSampler) keeps it off the global RNG
            generator=torch.Generator().manual_seed(seed), persistent_workers=cfg.DATASET.NUM_WORKERS > 0,
            worker_init_fn=_worker_init if cfg.DATASET.NUM_WORKERS > 0 else None,
        )
    val_sampler = ShardSampler(len(splits.test), rank, world_size) if world_size > 1 else None
    val_loader = DataLoader(
        splits.test, batch_size=test_batch_size, shuffle=False, sampler=val_sampler,
        num_workers=max(1, cfg.DATASET.NUM_WORKERS // 2) if cfg.DATASET.NUM_WORKERS else 0,
        pin_memory=torch.cuda.is_available(), worker_init_fn=_worker_init if cfg.DATASET.NUM_WORKERS else None,
    )
    return train_loader, val_loader, num_data, splits.num_classes


__all__ = ["DATASETS", "CropFlip", "DatasetInfo", "DatasetSplits", "EpochSampler", "SampleKey", "SeededSamples",
           "ShardSampler", "TrainSetWrapper", "dataset_info", "epoch_order", "get_dataset", "per_rank_batch_size",
           "register_dataset", "registered_datasets", "set_train_position"]
