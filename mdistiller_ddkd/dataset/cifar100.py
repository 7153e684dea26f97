"""CIFAR-100 (torchvision's ``cifar-100-python`` folder, file names and md5 sums) with mdistiller's
transforms and batch layouts, read safely.

torchvision's ``CIFAR100`` unpickles its files with ``pickle.load``, which runs whatever a crafted file
names; here the same files are read with ``safe_pickle.load_data_pickle`` (dicts, lists, strings, numbers
and numpy arrays only), with or without the md5 check (``DATASET.CHECK_INTEGRITY``). Items, ``data``,
``targets`` and ``classes`` are those of torchvision's dataset.
"""

from __future__ import annotations

import os
import tarfile
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torchvision.datasets import CIFAR100 as _TorchvisionCIFAR100
from torchvision.datasets.utils import check_integrity as md5_matches
from torchvision.datasets.utils import download_url

from ..errors import DataFileError, MissingInputError
from ..fileio import disk_error, disk_errors, is_file_system_refusal
from .common import (
    CIFAR100_MEAN,
    CIFAR100_STD,
    UInt8ImageDataset,
    WithIndex,
    cifar_test_transform,
    cifar_train_transform,
)
from .registry import DatasetSplits, register_dataset
from .safe_pickle import load_data_pickle

#: the official files, URL and md5 sums, as torchvision states them
_OFFICIAL = _TorchvisionCIFAR100
CIFAR100_URL = _OFFICIAL.url
FOLDER = _OFFICIAL.base_folder
NUM_CLASSES = 100


def missing_cifar_message(root: str, reason: str) -> str:
    folder = os.path.join(os.path.abspath(root), FOLDER)
    return (
        f"CIFAR-100 not available at {folder} ({reason}).\n"
        f"Expected layout: {folder}/{{train,test,meta}} (the python version of CIFAR-100).\n"
        f"Get it from {CIFAR100_URL} and unpack it into {os.path.abspath(root)} (tar xzf), or set "
        f"DATASET.ROOT to the folder that holds {FOLDER}/, or allow DATASET.DOWNLOAD True on a "
        f"connected machine. Copies whose md5 sums differ (re-encoded) need DATASET.CHECK_INTEGRITY False."
    )


def check_cifar_arrays(data: np.ndarray, targets, num_classes: int, split: str) -> None:
    """Shape and label checks that hold for any CIFAR-100-format folder."""
    if data.ndim != 4 or data.shape[1:] != (32, 32, 3) or data.dtype != np.uint8:
        raise DataFileError(f"CIFAR-100 {split} images have shape {data.shape} / {data.dtype}, expected "
                            f"(N,32,32,3) uint8")
    if len(targets) != len(data):
        raise DataFileError(f"CIFAR-100 {split}: {len(data)} images but {len(targets)} labels")
    if len(targets) and (min(targets) < 0 or max(targets) >= num_classes):
        raise DataFileError(f"CIFAR-100 {split} labels outside [0, {num_classes})")


def _split_files(train: bool) -> List[Sequence]:
    """``[[file name, md5], ...]`` of a split, plus the meta file."""
    files = _OFFICIAL.train_list if train else _OFFICIAL.test_list
    return [*files, [_OFFICIAL.meta["filename"], _OFFICIAL.meta["md5"]]]


def _extract_safely(archive: str, root: str) -> None:
    """Unpack the (md5-verified) archive, refusing links, devices and paths outside ``root``."""
    with tarfile.open(archive, "r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(root, filter="data")
            return
        base = os.path.realpath(root)
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(root, member.name))
            if not (member.isfile() or member.isdir()) or os.path.commonpath([base, target]) != base:
                raise DataFileError(f"{archive} holds {member.name!r}, which is not a plain file inside {root}")
        tar.extractall(root)


def _download(root: str) -> None:
    try:
        download_url(CIFAR100_URL, root, _OFFICIAL.filename, _OFFICIAL.tgz_md5)
    except (OSError, RuntimeError) as err:  # network failure, or a corrupt download (md5)
        if is_file_system_refusal(err):
            raise disk_error(err, f"downloading CIFAR-100 into {root}") from None
        raise MissingInputError(missing_cifar_message(root, f"download failed: {err}")) from None
    with disk_errors(f"unpacking CIFAR-100 into {root}"):
        _extract_safely(os.path.join(root, _OFFICIAL.filename), root)


def _read_entry(path: str, keys: Sequence[str]) -> Dict:
    entry = load_data_pickle(path, "CIFAR-100 file")
    if not isinstance(entry, dict):
        raise DataFileError(f"CIFAR-100 file {os.path.abspath(path)} holds a {type(entry).__name__}, not the "
                            f"format's dict — replace it with the official file")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise DataFileError(
            f"CIFAR-100 file {os.path.abspath(path)} lacks the key(s) {', '.join(map(repr, missing))} of the format "
            f"(it holds {', '.join(map(repr, sorted(map(str, entry))))[:200]}) — replace it with the official file")
    return entry


class CIFAR100Folder(UInt8ImageDataset):
    """``(transform(PIL image), label)`` from ``root/cifar-100-python`` (torchvision's layout and items);
    ``download`` fetches and unpacks the official archive when files are missing; ``check_integrity``
    verifies the official md5 sums (turn off for re-encoded copies)."""

    def __init__(self, root: str, train: bool = True, transform: Optional[Callable] = None,
                 download: bool = False, check_integrity: bool = True) -> None:
        self.root, self.train, self.transform = root, train, transform
        folder = os.path.join(root, FOLDER)
        files = _split_files(train)
        if download and not all(os.path.isfile(os.path.join(folder, name)) for name, _ in files):
            _download(root)
        for name, md5 in files:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise MissingInputError(missing_cifar_message(root, f"{name} is missing"))
            if check_integrity and not md5_matches(path, md5):
                raise MissingInputError(missing_cifar_message(root, f"the md5 sum of {name} is not the official one"))
        images, self.targets = [], []
        for name, _ in files[:-1]:
            entry = _read_entry(os.path.join(folder, name), ("data", "fine_labels"))
            images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            self.targets.extend(int(t) for t in entry["fine_labels"])
        self.data = np.ascontiguousarray(np.concatenate(images).transpose(0, 2, 3, 1))
        meta_key = _OFFICIAL.meta["key"]
        self.classes = [str(c) for c in _read_entry(os.path.join(folder, files[-1][0]), (meta_key,))[meta_key]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def load_cifar100_split(root: str, train: bool, download: bool, check_integrity: bool, transform=None):
    """One split; a missing, corrupt, incomplete or unsafe folder raises an error that says what to do."""
    try:
        dataset = CIFAR100Folder(root, train=train, transform=transform, download=download,
                                 check_integrity=check_integrity)
        check_cifar_arrays(dataset.data, dataset.targets, NUM_CLASSES, "train" if train else "test")
    except ValueError as err:  # a reshape of data that is not N x 3072 bytes, or the checks above
        if isinstance(err, DataFileError):
            raise
        raise DataFileError(f"{os.path.join(os.path.abspath(root), FOLDER)} is not in the CIFAR-100 format: {err} "
                            f"— replace it with the official files") from None
    return dataset


@register_dataset("cifar100", model_zoo="cifar", input_size=(32, 32), mean_std=(CIFAR100_MEAN, CIFAR100_STD))
def build_cifar100(cfg) -> DatasetSplits:
    root = cfg.DATASET.ROOT
    kwargs = dict(download=cfg.DATASET.DOWNLOAD, check_integrity=cfg.DATASET.CHECK_INTEGRITY)
    train = load_cifar100_split(root, True, transform=cifar_train_transform(), **kwargs)
    test = load_cifar100_split(root, False, transform=cifar_test_transform(), download=False,
                               check_integrity=cfg.DATASET.CHECK_INTEGRITY)
    return DatasetSplits(
        train=WithIndex(train),
        test=test,
        num_classes=NUM_CLASSES,
        train_targets=list(train.targets),
        train_uint8=torch.from_numpy(train.data),
        mean_std=(CIFAR100_MEAN, CIFAR100_STD),
    )
