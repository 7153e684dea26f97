"""The built-in synthetic dataset (``DATASET.TYPE synthetic``): CIFAR-shaped, generated in memory from a
seed, no download — the data of the offline demo.

Each image (3x32x32 uint8) holds two small textured patches, one above the other, on a noisy background,
plus a fainter distractor patch. A class is an *ordered* pair of textures (texture A above texture B);
every unordered pair appears in both orders as two classes, so telling them apart needs the vertical
relation of two patches 10-14 pixels apart, not only which textures are present. That needs receptive
field and depth: a resnet20 learns it almost perfectly in a few epochs, a resnet8 (receptive field about
25 pixels) clearly less well. Nuisances: patch positions, contrast, per-channel colour gain, brightness,
pixel noise and the distractor (a third texture, which also makes the teacher's soft labels informative).
``DATASET.SYNTHETIC.NOISE`` / ``DISTRACTOR_GAIN`` / ``NUM_TEXTURES`` make it cleaner: with more textures than
the classes need, which two are present already narrows the class down, so training starts at once instead of
sitting at chance for some seeds (the offline demo uses this; the defaults keep the original data).

Train transform: CIFAR's RandomCrop(32, padding=4) + horizontal flip + normalisation with the data's own
mean/std (flips keep the vertical relation, so labels stay valid); the padding is the grey background,
not black: black borders on these low-contrast scenes stall training for many epochs.
(``DATASET.GPU_AUGMENT`` pads with the same grey, via ``DatasetSplits.augment``.)
"""

from __future__ import annotations

import itertools
from typing import Tuple

import numpy as np
import torch
from yacs.config import CfgNode as CN

from ..errors import ConfigError
from .common import (  # noqa: F401  (channel_mean_std: also imported from here by plugins)
    UInt8ImageDataset,
    WithIndex,
    channel_mean_std,
    cifar_test_transform,
    crop_flip_transform,
)
from .registry import CropFlip, DatasetSplits, register_dataset

IMAGE_SIZE = 32
PATCH = 10  #: side of a texture patch
GAP = (10, 14)  #: vertical distance between the two patches (pixels)
NOISE = 0.35  #: default pixel noise (in units of a patch's peak amplitude)
BACKGROUND = 128  #: grey background; RandomCrop pads with it too (black padding stalls training here)
DISTRACTOR_GAIN = (0.3, 0.6)  #: default amplitude range of the distractor patch
PATCH_GAIN = (0.8, 1.2)


def _textures(rng: np.random.Generator, count: int, size: int = PATCH, waves: int = 2) -> np.ndarray:
    """``count`` colour textures (count, 3, size, size): sums of oriented gratings under a Gaussian window."""
    r = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    window = np.exp(-(xx**2 + yy**2) / (2 * (size / 3.5) ** 2))
    out = np.zeros((count, 3, size, size), np.float32)
    for k in range(count):
        for _ in range(waves):
            freq, theta, phase = rng.uniform(0.15, 0.45), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
            colour = rng.normal(size=3)
            colour /= np.linalg.norm(colour)
            grating = np.cos(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
            out[k] += colour[:, None, None] * grating
        out[k] *= window
        out[k] /= np.abs(out[k]).max()
    return out


def _class_pairs(rng: np.random.Generator, num_textures: int, num_classes: int) -> np.ndarray:
    """(num_classes, 2) texture indices (top, bottom); both orders of an unordered pair are adjacent classes."""
    unordered = list(itertools.combinations(range(num_textures), 2))
    rng.shuffle(unordered)
    ordered = [pair for a, b in unordered for pair in ((a, b), (b, a))]
    return np.array(ordered[:num_classes])


def _paste(canvas: np.ndarray, patches: np.ndarray, ys: np.ndarray, xs: np.ndarray, gain: np.ndarray) -> None:
    """Add ``gain[i] * patches[i]`` into ``canvas[i]`` at (ys[i], xs[i]), vectorised over the batch."""
    n, size = canvas.shape[0], patches.shape[-1]
    rows = ys[:, None] + np.arange(size)[None]
    cols = xs[:, None] + np.arange(size)[None]
    canvas[np.arange(n)[:, None, None, None], np.arange(3)[None, :, None, None],
           rows[:, None, :, None], cols[:, None, None, :]] += gain[:, None, None, None] * patches


def _render(rng: np.random.Generator, textures: np.ndarray, pairs: np.ndarray, labels: np.ndarray,
            noise: float = NOISE, distractor_gain: Tuple[float, float] = DISTRACTOR_GAIN) -> np.ndarray:
    """uint8 images (N, 32, 32, 3) for the given labels."""
    n, k, s, p = len(labels), len(textures), IMAGE_SIZE, PATCH
    top, bottom = pairs[labels, 0], pairs[labels, 1]
    # the distractor: any texture but the two of the class
    distractor = rng.integers(0, k - 2, n)
    distractor += distractor >= np.minimum(top, bottom)
    distractor += distractor >= np.maximum(top, bottom)

    canvas = np.zeros((n, 3, s, s), np.float32)
    gap = rng.integers(GAP[0], GAP[1] + 1, n)
    y_top = rng.integers(0, s - p - gap + 1)
    x_top = rng.integers(0, s - p + 1, n)
    x_bottom = np.clip(x_top + rng.integers(-6, 7, n), 0, s - p)
    _paste(canvas, textures[top], y_top, x_top, rng.uniform(*PATCH_GAIN, n).astype(np.float32))
    _paste(canvas, textures[bottom], y_top + gap, x_bottom, rng.uniform(*PATCH_GAIN, n).astype(np.float32))
    _paste(canvas, textures[distractor], rng.integers(0, s - p + 1, n), rng.integers(0, s - p + 1, n),
           rng.uniform(*distractor_gain, n).astype(np.float32))
    canvas *= rng.uniform(0.8, 1.2, (n, 3, 1, 1)).astype(np.float32)  # colour gain
    canvas += rng.normal(0.0, noise, canvas.shape).astype(np.float32)
    canvas += rng.normal(0.0, 0.2, (n, 3, 1, 1)).astype(np.float32)  # brightness / colour cast
    return np.clip(BACKGROUND + 60.0 * canvas, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()


def fewest_textures(num_classes: int) -> int:
    """The fewest textures (at least 3) whose ordered pairs give ``num_classes`` classes."""
    num_textures = 3
    while num_textures * (num_textures - 1) < num_classes:
        num_textures += 1
    return num_textures


def generate_synthetic(
    num_classes: int = 10, train_per_class: int = 200, test_per_class: int = 50, seed: int = 0,
    noise: float = NOISE, distractor_gain: Tuple[float, float] = DISTRACTOR_GAIN, num_textures: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train_images, train_labels, test_images, test_labels)``; images uint8 (N, 32, 32, 3), labels
    int64. Fully determined by the arguments; classes are balanced and the samples shuffled.
    ``num_textures`` 0 means :func:`fewest_textures`; more make the textures present more telling."""
    if num_classes < 2:
        raise ConfigError(f"DATASET.SYNTHETIC.NUM_CLASSES must be at least 2, got {num_classes}")
    if train_per_class < 1 or test_per_class < 1:
        raise ConfigError("DATASET.SYNTHETIC.TRAIN_PER_CLASS and TEST_PER_CLASS must be positive")
    if noise < 0:
        raise ConfigError(f"DATASET.SYNTHETIC.NOISE must be non-negative, got {noise}")
    low, high = (float(g) for g in distractor_gain)
    if not 0 <= low <= high:
        raise ConfigError(f"DATASET.SYNTHETIC.DISTRACTOR_GAIN must be [low, high] with 0 <= low <= high, "
                         f"got {list(distractor_gain)}")
    fewest = fewest_textures(num_classes)
    if num_textures == 0:
        num_textures = fewest
    elif num_textures < fewest:
        raise ConfigError(f"DATASET.SYNTHETIC.NUM_TEXTURES {num_textures} gives fewer than {num_classes} ordered "
                         f"pairs: use 0 or at least {fewest}")
    rng = np.random.default_rng(seed)
    textures = _textures(rng, num_textures)
    pairs = _class_pairs(rng, num_textures, num_classes)

    def split(per_class: int):
        labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
        images = _render(rng, textures, pairs, labels, noise, (low, high))
        order = rng.permutation(len(labels))
        return images[order], labels[order]

    train_x, train_y = split(train_per_class)
    test_x, test_y = split(test_per_class)
    return train_x, train_y, test_x, test_y


#: CIFAR's train augmentation, padding with the grey background instead of black
AUGMENT = CropFlip(padding=4, fill=BACKGROUND, hflip=True)


def synthetic_train_transform(mean, std):
    """CIFAR's train transform, padding with the grey background instead of black."""
    return crop_flip_transform(AUGMENT, IMAGE_SIZE, mean, std)


def _synthetic_config() -> CN:
    node = CN()
    node.NUM_CLASSES = 10
    node.TRAIN_PER_CLASS = 200
    node.TEST_PER_CLASS = 50
    node.SEED = 0
    node.NOISE = NOISE
    node.DISTRACTOR_GAIN = list(DISTRACTOR_GAIN)
    node.NUM_TEXTURES = 0  # 0: the fewest that give NUM_CLASSES ordered pairs
    return node


@register_dataset("synthetic", model_zoo="cifar", input_size=(IMAGE_SIZE, IMAGE_SIZE), config=_synthetic_config())
def build_synthetic(cfg) -> DatasetSplits:
    """The synthetic splits for ``cfg.DATASET.SYNTHETIC`` (NUM_CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS, SEED,
    NOISE, DISTRACTOR_GAIN, NUM_TEXTURES)."""
    node = cfg.DATASET.SYNTHETIC
    train_x, train_y, test_x, test_y = generate_synthetic(
        node.NUM_CLASSES, node.TRAIN_PER_CLASS, node.TEST_PER_CLASS, node.SEED,
        noise=float(node.NOISE), distractor_gain=tuple(node.DISTRACTOR_GAIN), num_textures=int(node.NUM_TEXTURES),
    )
    mean, std = channel_mean_std(train_x)
    train = UInt8ImageDataset(train_x, train_y, synthetic_train_transform(mean, std))
    test = UInt8ImageDataset(test_x, test_y, cifar_test_transform(mean, std))
    return DatasetSplits(
        train=WithIndex(train),
        test=test,
        num_classes=node.NUM_CLASSES,
        train_targets=list(train.targets),
        train_uint8=torch.from_numpy(train_x),
        mean_std=(mean, std),
        augment=AUGMENT,
    )
