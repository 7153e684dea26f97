"""An example plugin: a dataset, a model zoo and a method, registered from outside mdistiller_ddkd.

Load it with ``ddkd-train --plugins ddkd_example_plugin ...`` (the module on PYTHONPATH), with
``MDISTILLER_DDKD_PLUGINS=ddkd_example_plugin``, or from an installed package that declares it as an
entry point of the group ``mdistiller_ddkd.plugins``. Then::

    ddkd-train --plugins ddkd_example_plugin DATASET.TYPE mirror_digits \
        DISTILLER.TYPE NONE DISTILLER.TEACHER tiny_cnn_wide DISTILLER.STUDENT tiny_cnn_wide

trains a teacher, and ``examples/plugin/pooled_hint.yaml`` distils it into ``tiny_cnn``.
``tests/e2e/test_plugin.py`` runs exactly this; ``docs/extending.md`` shows the parts between the
``# [readme:...]`` markers, and ``tests/test_docs.py`` keeps the two identical.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms
from yacs.config import CfgNode as CN

from mdistiller_ddkd.dataset import CropFlip, DatasetSplits, register_dataset
from mdistiller_ddkd.dataset.common import WithIndex, crop_flip_transform
from mdistiller_ddkd.dataset.synthetic import UInt8ImageDataset, channel_mean_std
from mdistiller_ddkd.distillers import Distiller, register_distiller
from mdistiller_ddkd.distillers.base import probe_features, probe_input_size
from mdistiller_ddkd.models import register_model

SIZE = 24  #: image side (pixels)
GLYPH = (5, 4)  #: glyph bitmap (rows, columns), drawn 3x enlarged


def _glyphs(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` distinct, left-right asymmetric bitmaps; glyph 2k+1 is the mirror image of glyph 2k."""
    found: List[np.ndarray] = []
    while len(found) < count:
        g = rng.random(GLYPH) < 0.5
        mirror = g[:, ::-1]
        if np.array_equal(g, mirror) or any(np.array_equal(g, f) or np.array_equal(mirror, f) for f in found):
            continue
        found += [g, mirror.copy()]
    return np.stack(found[:count])


def generate_mirror_digits(num_classes: int, per_class: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 24, 24, 3) of one enlarged glyph each at a random place, and their labels."""
    if num_classes < 2 or num_classes % 2:
        raise ValueError(f"DATASET.MIRROR_DIGITS.NUM_CLASSES must be even and >= 2, got {num_classes}")
    rng = np.random.default_rng(seed)
    glyphs = _glyphs(np.random.default_rng(1234), num_classes)  # the same glyphs for every split
    labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
    images = rng.normal(40, 12, (len(labels), SIZE, SIZE, 3))
    big = np.kron(glyphs, np.ones((3, 3)))  # (classes, 15, 12)
    for i, label in enumerate(labels):
        y, x = rng.integers(0, SIZE - big.shape[1] + 1), rng.integers(0, SIZE - big.shape[2] + 1)
        colour = rng.uniform(120, 215, 3)
        images[i, y:y + big.shape[1], x:x + big.shape[2]] += big[label][..., None] * colour
    return np.clip(images, 0, 255).astype(np.uint8), labels.astype(np.int64)


# [readme:dataset]
# A mirrored glyph is another class: crop augmentation only, never a left-right flip.
AUGMENT = CropFlip(padding=2, fill=0, hflip=False)

_data = CN()  # becomes DATASET.MIRROR_DIGITS
_data.NUM_CLASSES = 10
_data.TRAIN_PER_CLASS = 40
_data.TEST_PER_CLASS = 10
_data.SEED = 0


@register_dataset("mirror_digits", model_zoo="example", input_size=(SIZE, SIZE), config=_data)
def build_mirror_digits(cfg) -> DatasetSplits:
    """Train items ``(image, target, index)``, test items ``(image, target)``."""
    node = cfg.DATASET.MIRROR_DIGITS
    train_x, train_y = generate_mirror_digits(node.NUM_CLASSES, node.TRAIN_PER_CLASS, node.SEED)
    test_x, test_y = generate_mirror_digits(node.NUM_CLASSES, node.TEST_PER_CLASS, node.SEED + 1)
    mean, std = channel_mean_std(train_x)
    train = UInt8ImageDataset(train_x, train_y, crop_flip_transform(AUGMENT, SIZE, mean, std))  # as AUGMENT says
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    test = UInt8ImageDataset(test_x, test_y, to_tensor)
    return DatasetSplits(train=WithIndex(train), test=test, num_classes=node.NUM_CLASSES,
                         train_targets=list(train.targets), augment=AUGMENT,
                         train_uint8=torch.from_numpy(train_x), mean_std=(mean, std))  # for DATASET.GPU_AUGMENT
# [/readme]


# [readme:model]
class TinyCNN(nn.Module):
    """Three conv-BN-ReLU stages; returns ``(logits, feats)`` like every model of the zoo."""

    def __init__(self, num_classes: int, width: int) -> None:
        super().__init__()
        channels = [width, width, 2 * width]
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False) for c_in, c_out, stride
                                   in zip([3] + channels[:-1], channels, [1, 1, 2]))
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in channels)
        self.fc = nn.Linear(channels[-1], num_classes)
        self.stage_channels = channels

    def get_stage_channels(self) -> List[int]:
        return list(self.stage_channels)

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        return list(self.bns[1:])

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Dict]:
        feats, preacts = [], []
        for conv, bn in zip(self.convs, self.bns):
            preacts.append(bn(conv(x)))
            x = F.relu(preacts[-1])
            feats.append(x)
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(pooled), {"feats": feats, "preact_feats": preacts, "pooled_feat": pooled}


@register_model("tiny_cnn", zoo="example")
def tiny_cnn(num_classes: int = 10) -> TinyCNN:
    return TinyCNN(num_classes, width=8)


@register_model("tiny_cnn_wide", zoo="example")
def tiny_cnn_wide(num_classes: int = 10) -> TinyCNN:
    return TinyCNN(num_classes, width=24)
# [/readme]


# [readme:method]
_hint = CN()  # becomes POOLED_HINT
_hint.CE_WEIGHT = 1.0
_hint.HINT_WEIGHT = 0.5


@register_distiller("POOLED_HINT", config=_hint)
class PooledHint(Distiller):
    """Cross-entropy plus a FitNet-style hint on the pooled features: a learned linear map takes the
    student's pooled feature to the teacher's, and their squared distance is minimised."""

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg) -> None:
        super().__init__(student, teacher)
        size = probe_input_size(cfg)  # the dataset's registered input size
        s_dim = probe_features(student, size)[1]["pooled_feat"].shape[1]
        t_dim = probe_features(teacher, size)[1]["pooled_feat"].shape[1]
        self.connector = nn.Linear(s_dim, t_dim)  # counted by get_extra_parameters()
        self.ce_weight, self.hint_weight = cfg.POOLED_HINT.CE_WEIGHT, cfg.POOLED_HINT.HINT_WEIGHT

    def forward_train(self, image, target, **kwargs):
        logits, feats = self.student(image)
        _, feats_t = self.teacher_forward(image)  # no graph, teacher in eval mode
        hint = F.mse_loss(self.connector(feats["pooled_feat"]), feats_t["pooled_feat"])
        return logits, {"loss_ce": self.ce_weight * F.cross_entropy(logits, target),
                        "loss_hint": self.hint_weight * hint}
# [/readme]
