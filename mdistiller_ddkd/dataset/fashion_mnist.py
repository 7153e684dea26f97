"""Fashion-MNIST (Xiao et al., 2017): 60 000 + 10 000 grey 28×28 images of 10 kinds of clothing, read from
the original idx files (gzip or plain), zero-padded to 32×32 and repeated over three channels, so the CIFAR
model zoo serves it unchanged.

``DATASET.ROOT`` is the folder holding ``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``,
``t10k-images-idx3-ubyte[.gz]`` and ``t10k-labels-idx1-ubyte[.gz]`` (or a ``fashion-mnist/`` folder holding
them); Debian's ``dataset-fashion-mnist`` package installs them into ``/usr/share/datasets/fashion-mnist``.
``DATASET.FASHION_MNIST`` picks a class-balanced subset of each split: the first ``TRAIN_PER_CLASS`` /
``TEST_PER_CLASS`` images of every class in an order drawn from ``SEED`` (0 = every image), so a smaller
subset is part of every larger one drawn with the same seed (a teacher trained on more of the data has
seen all of a student's images). Train transform: RandomCrop(32, padding 4, black) + horizontal flip
(a mirrored garment is the same garment) + normalisation with the subset's own mean and std.
"""

from __future__ import annotations

import gzip
import os
from typing import List, Tuple

import numpy as np
import torch
from yacs.config import CfgNode as CN

from ..errors import ConfigError, DataFileError, MissingInputError
from .common import UInt8ImageDataset, WithIndex, channel_mean_std, cifar_test_transform, crop_flip_transform
from .registry import CropFlip, DatasetSplits, register_dataset

NUM_CLASSES = 10
IMAGE_SIZE = 32  #: after zero-padding the 28×28 originals by 2 pixels on every side
ORIGINAL_SIZE = 28
#: the four files of the original distribution (each may also be gzip-compressed, name + ``.gz``)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SUBFOLDER = "fashion-mnist"
DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
#: idx type code -> numpy dtype (big-endian), from the format's definition (LeCun et al.)
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
AUGMENT = CropFlip(padding=4, fill=0, hflip=True)


def _read_bytes(path: str) -> bytes:
    """The file's bytes, gunzipped when it starts with gzip's magic number."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError; EOFError: truncated gzip stream
        if isinstance(err, FileNotFoundError):
            raise MissingInputError(f"{path} not found") from None
        raise DataFileError(f"{path} cannot be read as an idx file (plain or gzip): {err}") from None
    return data


def parse_idx(data: bytes, what: str = "idx data") -> np.ndarray:
    """The array of an idx file: two zero bytes, a type code, the number of dimensions, one big-endian
    uint32 per dimension, then the values in C order (big-endian)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataFileError(f"{what} is not an idx file (it must start with two zero bytes)")
    dtype = IDX_DTYPES.get(data[2])
    if dtype is None:
        raise DataFileError(f"{what}: unknown idx type code 0x{data[2]:02x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"{what}: truncated idx header")
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataFileError(f"{what}: the header announces shape {shape} ({expected} bytes of data) but the file "
                            f"holds {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def dataset_folder(root: str) -> str:
    """``root`` when it holds the train images file, else ``root/fashion-mnist``."""
    name = FILES["train"][0]
    if any(os.path.isfile(os.path.join(root, name + ext)) for ext in (".gz", "")):
        return root
    return os.path.join(root, SUBFOLDER)


def _file(folder: str, name: str) -> str:
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    raise MissingInputError(
        f"Fashion-MNIST not found: {os.path.join(os.path.abspath(folder), name)}[.gz] is missing. Set DATASET.ROOT "
        f"to the folder holding the four idx files (Debian/Ubuntu: apt-get install dataset-fashion-mnist, then "
        f"DATASET.ROOT {DEBIAN_ROOT})")


def read_split(root: str, split: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 28, 28), labels int64 (N,))`` of ``split`` (train | test), checked."""
    folder = dataset_folder(root)
    image_path, label_path = (_file(folder, name) for name in FILES[split])
    images = parse_idx(_read_bytes(image_path), image_path)
    labels = parse_idx(_read_bytes(label_path), label_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (ORIGINAL_SIZE, ORIGINAL_SIZE):
        raise DataFileError(f"{image_path}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataFileError(f"{label_path}: {labels.shape} labels for {len(images)} images in {image_path}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFileError(f"{label_path}: labels outside [0, {NUM_CLASSES})")
    return images, labels.astype(np.int64)


def balanced_subset(labels: np.ndarray, per_class: int, seed: int, split: str) -> np.ndarray:
    """Indices of the first ``per_class`` images of every class in a seeded random order (0: all images),
    sorted; a smaller ``per_class`` gives a subset of a larger one's."""
    if per_class < 0:
        raise ConfigError(f"DATASET.FASHION_MNIST.{split.upper()}_PER_CLASS must be >= 0 (0: all), got {per_class}")
    if per_class == 0:
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    chosen: List[np.ndarray] = []
    for c in range(NUM_CLASSES):
        of_class = order[labels[order] == c]
        if len(of_class) < per_class:
            raise ConfigError(f"DATASET.FASHION_MNIST.{split.upper()}_PER_CLASS {per_class}: class {c} has only "
                              f"{len(of_class)} {split} images")
        chosen.append(of_class[:per_class])
    return np.sort(np.concatenate(chosen))


def to_rgb32(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 32, 32, 3): zero-padded by 2 pixels on every side, grey in all three channels."""
    pad = (IMAGE_SIZE - ORIGINAL_SIZE) // 2
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    return np.ascontiguousarray(np.repeat(padded[..., None], 3, axis=3))


def _fashion_mnist_config() -> CN:
    node = CN()
    node.TRAIN_PER_CLASS = 0  # training images per class (0: all 6000)
    node.TEST_PER_CLASS = 0  # test images per class (0: all 1000)
    node.SEED = 0  # which images the subsets take
    return node


@register_dataset("fashion_mnist", model_zoo="cifar", input_size=(IMAGE_SIZE, IMAGE_SIZE),
                  config=_fashion_mnist_config())
def build_fashion_mnist(cfg) -> DatasetSplits:
    """The subsets of ``cfg.DATASET.FASHION_MNIST`` from the idx files under ``cfg.DATASET.ROOT``."""
    node, root = cfg.DATASET.FASHION_MNIST, cfg.DATASET.ROOT
    splits = {}
    for split, per_class in (("train", node.TRAIN_PER_CLASS), ("test", node.TEST_PER_CLASS)):
        images, labels = read_split(root, split)
        keep = balanced_subset(labels, int(per_class), int(node.SEED), split)
        splits[split] = (to_rgb32(images[keep]), labels[keep])
    train_x, train_y = splits["train"]
    mean, std = channel_mean_std(train_x)
    train = UInt8ImageDataset(train_x, train_y, crop_flip_transform(AUGMENT, IMAGE_SIZE, mean, std))
    test = UInt8ImageDataset(*splits["test"], cifar_test_transform(mean, std))
    return DatasetSplits(train=WithIndex(train), test=test, num_classes=NUM_CLASSES, train_targets=list(train.targets),
                         train_uint8=torch.from_numpy(train_x), mean_std=(mean, std), augment=AUGMENT)


def write_idx(path: str, array: np.ndarray, compress: bool = True) -> str:
    """Write ``array`` (uint8) as an idx file (gzip-compressed when ``compress``): for tests and small data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes() + array.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)
    return path


def write_fashion_mnist_folder(root: str, train_per_class: int = 3, test_per_class: int = 2, seed: int = 0,
                               compress: bool = True) -> str:
    """Write random Fashion-MNIST-format idx files (28×28 uint8, 10 classes) into ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(NUM_CLASSES, dtype=np.uint8), per_class))
        images = rng.integers(0, 256, (len(labels), ORIGINAL_SIZE, ORIGINAL_SIZE), dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(os.path.join(root, FILES[split][0] + suffix), images, compress)
        write_idx(os.path.join(root, FILES[split][1] + suffix), labels, compress)
    return root
