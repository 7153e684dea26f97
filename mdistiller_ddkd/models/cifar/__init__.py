"""CIFAR-100 model zoo (mdistiller-compatible names, state dicts and feature outputs)."""

from __future__ import annotations

import os
from typing import Callable, Dict, Mapping

from torch import nn

from ..registry import ZooEntry, register_zoo
from .mobilenetv2 import MobileNetV2, mobile_half
from .resnet import (
    resnet8,
    resnet8x4,
    resnet14,
    resnet20,
    resnet32,
    resnet32x4,
    resnet44,
    resnet56,
    resnet110,
)
from .resnetv2 import ResNet18, ResNet34, ResNet50
from .shufflenetv1 import ShuffleV1
from .shufflenetv2 import ShuffleV2
from .vgg import vgg8, vgg11, vgg13, vgg16, vgg19
from .wrn import wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2

#: where mdistiller's released CIFAR-100 teachers live, relative to the working directory
CIFAR_TEACHER_DIR = os.path.join("download_ckpts", "cifar_teachers")

#: the six models with a released, pre-trained CIFAR-100 teacher checkpoint
CIFAR_TEACHERS = ("resnet56", "resnet110", "resnet32x4", "ResNet50", "wrn_40_2", "vgg13")


def _released_checkpoint(name: str) -> str:
    """``download_ckpts/cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth`` (relative to the cwd)."""
    return "/".join([CIFAR_TEACHER_DIR.replace(os.sep, "/"), f"{name}_vanilla", "ckpt_epoch_240.pth"])


_BUILDERS: Dict[str, Callable[..., nn.Module]] = {
    "resnet8": resnet8,
    "resnet14": resnet14,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet44": resnet44,
    "resnet56": resnet56,
    "resnet110": resnet110,
    "resnet8x4": resnet8x4,
    "resnet32x4": resnet32x4,
    "ResNet18": ResNet18,
    "ResNet50": ResNet50,
    "wrn_16_1": wrn_16_1,
    "wrn_16_2": wrn_16_2,
    "wrn_40_1": wrn_40_1,
    "wrn_40_2": wrn_40_2,
    "vgg8": vgg8,
    "vgg11": vgg11,
    "vgg13": vgg13,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "MobileNetV2": MobileNetV2,
    "ShuffleV1": ShuffleV1,
    "ShuffleV2": ShuffleV2,
}

#: name -> (builder(num_classes=...), default teacher checkpoint path or None)
cifar_model_dict: Mapping[str, ZooEntry] = register_zoo("cifar", {
    name: (builder, _released_checkpoint(name) if name in CIFAR_TEACHERS else None)
    for name, builder in _BUILDERS.items()
})

__all__ = ["cifar_model_dict", "CIFAR_TEACHERS", "mobile_half", "ResNet34"] + list(
    _BUILDERS
)
