"""The dataset registry: ``register_dataset("name", model_zoo=..., input_size=..., config=...)`` maps
``DATASET.TYPE`` to a builder and says what the rest of the toolbox needs to know about the dataset.

A builder is ``builder(cfg) -> DatasetSplits``; its train set yields ``(image, target, index)`` and its
test set ``(image, target)``. ``get_dataset`` adds what a method's batch layout needs (CRD's
contrastive indices), the samplers and the loaders. What a dataset registers is accepted everywhere:
``DATASET.TYPE`` is validated against this registry, the models come from its ``model_zoo`` and the
methods' probe images have its ``input_size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import Dataset
from yacs.config import CfgNode

from ..registry import Registry


@dataclass(frozen=True)
class CropFlip:
    """The train-time augmentation of the on-device path (``DATASET.GPU_AUGMENT``): pad by ``padding``
    with ``fill``, crop back to the original size at a uniform offset, and mirror left-right with
    probability 1/2 when ``hflip`` (set it False where a mirror image is another class: digits, text)."""

    padding: int = 4
    fill: int = 0
    hflip: bool = True


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
    #: the on-device path's augmentation; it must match the DataLoader transform of ``train``
    augment: CropFlip = CropFlip()


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset declares besides its builder."""

    name: str
    builder: Callable[..., DatasetSplits]
    #: the model zoo its teacher and student names are looked up in (``models.model_zoo(name)``)
    model_zoo: str = "cifar"
    #: (H, W) of its images: the probe input of methods that read feature shapes at build time
    input_size: Tuple[int, int] = (32, 32)
    #: its own config node, merged as ``DATASET.<NAME>`` (upper case), or None
    config: Optional[CfgNode] = None
    #: the per-channel (mean, std) its test images are normalised with, when fixed (what an exported student
    #: needs in front of it); None: only the built splits know it (``DatasetSplits.mean_std``)
    mean_std: Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]] = None

    @property
    def config_key(self) -> str:
        return self.name.upper()


#: ``DATASET.TYPE`` -> its registration
DATASETS: Registry[DatasetInfo] = Registry("dataset (DATASET.TYPE)")


def register_dataset(name: str, model_zoo: str = "cifar", input_size: Sequence[int] = (32, 32),
                     config: Optional[CfgNode] = None, mean_std: Optional[tuple] = None) -> Callable:
    """Decorator: register ``builder(cfg) -> DatasetSplits`` as ``DATASET.TYPE == name``, with the model
    zoo it uses, its image size and (optionally) its config node ``DATASET.<NAME>`` and its fixed
    normalisation ``(mean, std)``."""

    def wrap(builder):
        DATASETS.register(name, DatasetInfo(name, builder, model_zoo, (int(input_size[0]), int(input_size[1])),
                                            config, mean_std))
        return builder

    return wrap


def registered_datasets() -> List[str]:
    """The valid values of ``DATASET.TYPE``."""
    return DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """The registration of ``DATASET.TYPE == name``; an unknown name lists the registered ones."""
    return DATASETS.get(name)


def build_splits(cfg) -> DatasetSplits:
    return dataset_info(cfg.DATASET.TYPE).builder(cfg)
