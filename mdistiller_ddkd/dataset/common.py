"""Pieces every dataset builder shares: the index-returning wrapper and mdistiller's CIFAR transforms."""

from __future__ import annotations

from typing import Tuple

from torch.utils.data import Dataset
from torchvision import transforms

CIFAR100_MEAN: Tuple[float, float, float] = (0.5071, 0.4867, 0.4408)
CIFAR100_STD: Tuple[float, float, float] = (0.2675, 0.2565, 0.2761)


class WithIndex(Dataset):
    """Wraps a dataset of ``(image, target)`` into ``(image, target, index)`` (mdistiller's train layout)."""

    def __init__(self, base: Dataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, target = self.base[index]
        return image, target, index


def cifar_train_transform(mean=CIFAR100_MEAN, std=CIFAR100_STD) -> transforms.Compose:
    """RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize — as mdistiller."""
    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def cifar_test_transform(mean=CIFAR100_MEAN, std=CIFAR100_STD) -> transforms.Compose:
    """ToTensor + Normalize — as mdistiller."""
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
