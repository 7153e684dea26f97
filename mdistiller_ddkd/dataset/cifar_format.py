"""Write a CIFAR-100 folder (``cifar-100-python/`` with pickled ``train``, ``test``, ``meta``) in the
official format: used by the tests and the benchmarks where the real data cannot be downloaded."""

from __future__ import annotations

import os
import pickle

import numpy as np


def write_cifar100_folder(
    root: str, n_train: int = 200, n_test: int = 100, num_classes: int = 100, seed: int = 0
) -> str:
    """Create ``root/cifar-100-python`` holding random images with labels cycling over the classes.

    Images are class-dependent (a per-class colour offset plus noise), so a model can learn something.
    Returns the folder path. The md5 sums differ from the official files: load it with
    ``DATASET.CHECK_INTEGRITY False``.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-100-python")
    os.makedirs(folder, exist_ok=True)
    class_colour = rng.integers(0, 256, size=(num_classes, 3, 1, 1))

    def split(n: int) -> dict:
        labels = np.arange(n) % num_classes
        noise = rng.integers(-40, 41, size=(n, 3, 32, 32))
        images = np.clip(class_colour[labels] + noise, 0, 255).astype(np.uint8)
        return {
            "filenames": [f"img_{i}.png" for i in range(n)],
            "batch_label": "synthetic",
            "fine_labels": labels.tolist(),
            "coarse_labels": (labels // 5).tolist(),
            "data": images.reshape(n, 3 * 32 * 32),
        }

    for name, n in (("train", n_train), ("test", n_test)):
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(split(n), f)
    with open(os.path.join(folder, "meta"), "wb") as f:
        pickle.dump(
            {"fine_label_names": [f"class_{i}" for i in range(num_classes)],
             "coarse_label_names": [f"super_{i}" for i in range(20)]},
            f,
        )
    return folder
