"""Pieces every dataset builder shares: the uint8 image dataset, the index-returning wrapper and
mdistiller's CIFAR transforms."""

from __future__ import annotations

from typing import Tuple

import numpy as np
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms

from .registry import CropFlip

CIFAR100_MEAN: Tuple[float, float, float] = (0.5071, 0.4867, 0.4408)
CIFAR100_STD: Tuple[float, float, float] = (0.2675, 0.2565, 0.2761)


def channel_mean_std(images: np.ndarray) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, H, W, 3) in [0, 1], rounded to 4 decimals."""
    x = images.reshape(-1, 3).astype(np.float64) / 255.0
    return tuple(round(float(v), 4) for v in x.mean(0)), tuple(round(float(v), 4) for v in x.std(0))


class UInt8ImageDataset(Dataset):
    """``(transform(PIL image), label)`` over uint8 images (N, H, W, 3), like torchvision's CIFAR datasets."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None) -> None:
        self.data = images
        self.targets = [int(t) for t in labels]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.data[index])
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]


class WithIndex(Dataset):
    """Wraps a dataset of ``(image, target)`` into ``(image, target, index)`` (mdistiller's train layout)."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, target = self.base[index]
        return image, target, index


def crop_flip_transform(augment: CropFlip, size: int, mean, std) -> transforms.Compose:
    """The DataLoader form of ``augment`` (the on-device path draws from the same distribution):
    RandomCrop(size, padding, fill), RandomHorizontalFlip when ``augment.hflip``, ToTensor, Normalize."""
    steps = [transforms.RandomCrop(size, padding=augment.padding, fill=(augment.fill,) * 3 if augment.fill else 0)]
    if augment.hflip:
        steps.append(transforms.RandomHorizontalFlip())
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(mean, std)])


def cifar_train_transform(mean=CIFAR100_MEAN, std=CIFAR100_STD) -> transforms.Compose:
    """RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize — as mdistiller."""
    return crop_flip_transform(CropFlip(), 32, mean, std)


def cifar_test_transform(mean=CIFAR100_MEAN, std=CIFAR100_STD) -> transforms.Compose:
    """ToTensor + Normalize — as mdistiller."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
