"""ImageNet through ``ImageFolder`` (``ROOT/train``, ``ROOT/val``) with the standard transforms."""

from __future__ import annotations

import os

from torchvision import transforms
from torchvision.datasets import ImageFolder

from ..errors import DataFileError, MissingInputError
from .common import WithIndex
from .registry import DatasetSplits, register_dataset

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_train_transform() -> transforms.Compose:
    """RandomResizedCrop(224) + horizontal flip + ImageNet normalisation."""
    return transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def imagenet_test_transform() -> transforms.Compose:
    """Resize(256) + CenterCrop(224) + ImageNet normalisation."""
    return transforms.Compose([
        transforms.Resize(256),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


def _image_folder(root: str, split: str, transform) -> ImageFolder:
    folder = os.path.join(os.path.abspath(root), split)
    if not os.path.isdir(folder):
        raise MissingInputError(
            f"ImageNet {split} folder not found: {folder}.\nExpected layout: "
            f"{os.path.abspath(root)}/train/<wnid>/*.JPEG "
            f"and {os.path.abspath(root)}/val/<wnid>/*.JPEG (val sorted into class folders). ImageNet cannot be "
            f"downloaded automatically: get ILSVRC2012 from https://image-net.org and set DATASET.ROOT."
        )
    try:
        return ImageFolder(folder, transform=transform)
    except (FileNotFoundError, RuntimeError) as err:
        raise MissingInputError(f"ImageNet {split} folder {folder} holds no images in class folders: {err}") from None


@register_dataset("imagenet", model_zoo="imagenet", input_size=(224, 224), mean_std=(IMAGENET_MEAN, IMAGENET_STD))
def build_imagenet(cfg) -> DatasetSplits:
    train = _image_folder(cfg.DATASET.ROOT, "train", imagenet_train_transform())
    test = _image_folder(cfg.DATASET.ROOT, "val", imagenet_test_transform())
    if train.classes != test.classes:
        raise DataFileError(f"ImageNet train/ and val/ class folders differ: "
                         f"{sorted(set(train.classes) ^ set(test.classes))[:10]}")
    return DatasetSplits(train=WithIndex(train), test=test, num_classes=len(train.classes),
                         train_targets=list(train.targets))
