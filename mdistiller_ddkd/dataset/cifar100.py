"""CIFAR-100 through torchvision's ``CIFAR100`` with mdistiller's transforms and batch layouts."""

from __future__ import annotations

import os

import numpy as np
import torch
from torchvision.datasets import CIFAR100

from .common import CIFAR100_MEAN, CIFAR100_STD, WithIndex, cifar_test_transform, cifar_train_transform
from .registry import DatasetSplits, register_dataset

CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"


class UncheckedCIFAR100(CIFAR100):
    """``CIFAR100`` that checks only that the files exist (no md5): for re-encoded copies and test folders.

    Shapes and labels are still checked by ``check_cifar_arrays``.
    """

    train_list = [["train", None]]
    test_list = [["test", None]]
    meta = {"filename": "meta", "key": "fine_label_names", "md5": None}


def missing_cifar_message(root: str, reason: str) -> str:
    folder = os.path.join(os.path.abspath(root), "cifar-100-python")
    return (
        f"CIFAR-100 not available at {folder} ({reason}).\n"
        f"Expected layout: {folder}/{{train,test,meta}} (the python version of CIFAR-100).\n"
        f"Get it from {CIFAR100_URL} and unpack it into {os.path.abspath(root)} (tar xzf), or set "
        f"DATASET.ROOT to the folder that holds cifar-100-python/, or allow DATASET.DOWNLOAD True on a "
        f"connected machine. Copies whose md5 sums differ (re-encoded) need DATASET.CHECK_INTEGRITY False."
    )


def check_cifar_arrays(data: np.ndarray, targets, num_classes: int, split: str) -> None:
    """Shape and label checks that hold for any CIFAR-100-format folder."""
    if data.ndim != 4 or data.shape[1:] != (32, 32, 3) or data.dtype != np.uint8:
        raise ValueError(f"CIFAR-100 {split} images have shape {data.shape} / {data.dtype}, expected (N,32,32,3) uint8")
    if len(targets) != len(data):
        raise ValueError(f"CIFAR-100 {split}: {len(data)} images but {len(targets)} labels")
    if len(targets) and (min(targets) < 0 or max(targets) >= num_classes):
        raise ValueError(f"CIFAR-100 {split} labels outside [0, {num_classes})")


def load_cifar100_split(root: str, train: bool, download: bool, check_integrity: bool, transform=None):
    """The torchvision dataset for one split; a missing or corrupt folder raises a clear error."""
    cls = CIFAR100 if check_integrity else UncheckedCIFAR100
    try:
        dataset = cls(root=root, train=train, download=download, transform=transform)
    except RuntimeError as err:
        raise FileNotFoundError(missing_cifar_message(root, str(err))) from None
    except OSError as err:  # network failure while downloading
        raise FileNotFoundError(missing_cifar_message(root, f"download failed: {err}")) from None
    check_cifar_arrays(dataset.data, dataset.targets, 100, "train" if train else "test")
    return dataset


@register_dataset("cifar100", model_zoo="cifar", input_size=(32, 32))
def build_cifar100(cfg) -> DatasetSplits:
    root = cfg.DATASET.ROOT
    kwargs = dict(download=cfg.DATASET.DOWNLOAD, check_integrity=cfg.DATASET.CHECK_INTEGRITY)
    train = load_cifar100_split(root, True, transform=cifar_train_transform(), **kwargs)
    test = load_cifar100_split(root, False, transform=cifar_test_transform(), download=False,
                               check_integrity=cfg.DATASET.CHECK_INTEGRITY)
    return DatasetSplits(
        train=WithIndex(train),
        test=test,
        num_classes=100,
        train_targets=list(train.targets),
        train_uint8=torch.from_numpy(train.data),
        mean_std=(CIFAR100_MEAN, CIFAR100_STD),
    )
