"""Tiny-ImageNet (200 classes, 64x64) as mdistiller reads it: ``ImageFolder`` over
``DATASET.ROOT/tiny-imagenet-200/train`` and ``.../val``, with its transforms and mean/std.

mdistiller expects ``val/`` sorted into class folders (``val/<wnid>/*.JPEG``); the official download
instead has ``val/images/*.JPEG`` plus ``val/val_annotations.txt`` (file name, wnid, box), which is read
here as it is, so the unzipped archive works without a preprocessing step.
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

from torch.utils.data import Dataset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import default_loader

from ..errors import DataFileError, MissingInputError
from .common import WithIndex
from .registry import DatasetSplits, register_dataset

TINY_IMAGENET_MEAN: Tuple[float, float, float] = (0.4802, 0.4481, 0.3975)
TINY_IMAGENET_STD: Tuple[float, float, float] = (0.2302, 0.2265, 0.2262)
#: the folder the archive unpacks to, inside DATASET.ROOT
FOLDER = "tiny-imagenet-200"
DOWNLOAD_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
VAL_ANNOTATIONS = "val_annotations.txt"


def tiny_imagenet_train_transform() -> transforms.Compose:
    """RandomRotation(20), RandomHorizontalFlip, ToTensor, Normalize — as mdistiller (no crop, so the
    on-device CropFlip path, ``DATASET.GPU_AUGMENT``, is not offered)."""
    return transforms.Compose([
        transforms.RandomRotation(20),
        transforms.RandomHorizontalFlip(0.5),
        transforms.ToTensor(),
        transforms.Normalize(TINY_IMAGENET_MEAN, TINY_IMAGENET_STD),
    ])


def tiny_imagenet_test_transform() -> transforms.Compose:
    """ToTensor + Normalize — as mdistiller."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(TINY_IMAGENET_MEAN, TINY_IMAGENET_STD)])


class AnnotatedImages(Dataset):
    """``(image, target)`` for the official ``val/images`` + ``val_annotations.txt`` layout."""

    def __init__(self, samples: List[Tuple[str, int]], transform) -> None:
        self.samples = samples
        self.targets = [t for _, t in samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        return self.transform(default_loader(path)), target


def _layout_hint(base: str) -> str:
    return (f"Expected layout: {base}/train/<wnid>/**/*.JPEG and {base}/val/<wnid>/*.JPEG (or the download's "
            f"{base}/val/images/ with val/{VAL_ANNOTATIONS}). Download {DOWNLOAD_URL}, unzip it into DATASET.ROOT "
            f"and set DATASET.ROOT to the folder holding {FOLDER}/")


def dataset_folder(root: str) -> str:
    """``ROOT/tiny-imagenet-200``, or ``ROOT`` itself when it holds ``train/`` and ``val/`` directly."""
    root = os.path.abspath(root)
    holds_splits = all(os.path.isdir(os.path.join(root, split)) for split in ("train", "val"))
    if holds_splits and not os.path.isdir(os.path.join(root, FOLDER)):
        return root
    return os.path.join(root, FOLDER)


def _train_set(base: str) -> ImageFolder:
    folder = os.path.join(base, "train")
    if not os.path.isdir(folder):
        raise MissingInputError(f"Tiny-ImageNet train folder not found: {folder}. {_layout_hint(base)}")
    try:
        return ImageFolder(folder, transform=tiny_imagenet_train_transform())
    except (FileNotFoundError, RuntimeError) as err:
        raise MissingInputError(f"Tiny-ImageNet train folder {folder} holds no images in class folders "
                                f"({str(err).splitlines()[0]}). {_layout_hint(base)}") from None


def _annotated_val_set(folder: str, class_to_idx: Dict[str, int]) -> AnnotatedImages:
    samples = []
    with open(os.path.join(folder, VAL_ANNOTATIONS)) as f:
        for line in f:
            fields = line.split("\t")
            if len(fields) < 2:
                continue
            name, wnid = fields[0].strip(), fields[1].strip()
            if wnid not in class_to_idx:
                raise DataFileError(f"{folder}/{VAL_ANNOTATIONS} names class {wnid!r}, which train/ has no folder for")
            samples.append((os.path.join(folder, "images", name), class_to_idx[wnid]))
    if not samples:
        raise MissingInputError(f"{folder}/{VAL_ANNOTATIONS} lists no images")
    return AnnotatedImages(samples, tiny_imagenet_test_transform())


def _val_set(base: str, train: ImageFolder) -> Dataset:
    folder = os.path.join(base, "val")
    if os.path.isfile(os.path.join(folder, VAL_ANNOTATIONS)) and os.path.isdir(os.path.join(folder, "images")):
        return _annotated_val_set(folder, train.class_to_idx)
    if not os.path.isdir(folder):
        raise MissingInputError(f"Tiny-ImageNet val folder not found: {folder}. {_layout_hint(base)}")
    try:
        val = ImageFolder(folder, transform=tiny_imagenet_test_transform())
    except (FileNotFoundError, RuntimeError) as err:
        raise MissingInputError(f"Tiny-ImageNet val folder {folder} holds no images in class folders "
                                f"({str(err).splitlines()[0]}). {_layout_hint(base)}") from None
    if val.classes != train.classes:
        raise DataFileError(f"Tiny-ImageNet train/ and val/ class folders differ: "
                         f"{sorted(set(train.classes) ^ set(val.classes))[:10]}")
    return val


@register_dataset("tiny_imagenet", model_zoo="tiny_imagenet", input_size=(64, 64),
                  mean_std=(TINY_IMAGENET_MEAN, TINY_IMAGENET_STD))
def build_tiny_imagenet(cfg) -> DatasetSplits:
    """Train (with index) and val splits; the number of classes is that of ``train/`` (200 for the real
    data). ``train_uint8`` stays None: the train transform is no pad-crop-flip, so ``augment`` is unused."""
    base = dataset_folder(cfg.DATASET.ROOT)
    train = _train_set(base)
    test = _val_set(base, train)
    return DatasetSplits(train=WithIndex(train), test=test, num_classes=len(train.classes),
                         train_targets=list(train.targets))


def write_tiny_imagenet_folder(root: str, num_classes: int = 3, train_per_class: int = 4, val_per_class: int = 2,
                               seed: int = 0, annotated_val: bool = False) -> str:
    """Write a small Tiny-ImageNet tree of random 64x64 JPEGs under ``root/tiny-imagenet-200`` (for tests and
    smoke runs): ``train/<wnid>/images/<wnid>_<i>.JPEG`` and either ``val/<wnid>/`` (mdistiller's layout) or,
    with ``annotated_val``, the download's ``val/images`` + ``val_annotations.txt``. Returns the tree."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = os.path.join(root, FOLDER)
    wnids = [f"n{index:08d}" for index in range(num_classes)]
    annotations = []
    for wnid in wnids:
        train_dir = os.path.join(base, "train", wnid, "images")
        os.makedirs(train_dir, exist_ok=True)
        with open(os.path.join(base, "train", wnid, f"{wnid}_boxes.txt"), "w") as f:  # as in the archive
            f.write("")
        for i in range(train_per_class):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
                os.path.join(train_dir, f"{wnid}_{i}.JPEG"), format="JPEG")
        for i in range(val_per_class):
            name = f"val_{len(annotations)}.JPEG"
            val_dir = os.path.join(base, "val", "images" if annotated_val else wnid)
            os.makedirs(val_dir, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
                os.path.join(val_dir, name), format="JPEG")
            annotations.append(f"{name}\t{wnid}\t0\t0\t63\t63\n")
    if annotated_val:
        with open(os.path.join(base, "val", VAL_ANNOTATIONS), "w") as f:
            f.writelines(annotations)
    return base
