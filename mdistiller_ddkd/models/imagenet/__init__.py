"""ImageNet model zoo: torchvision-layout ResNets and mdistiller's MobileNetV1."""

from __future__ import annotations

from typing import Mapping

from ..registry import ZooEntry, register_zoo
from .mobilenetv1 import MobileNetV1
from .resnet import ResNet18, ResNet34, ResNet50, ResNet101, load_torchvision_weights

#: name -> (builder(num_classes=..., pretrained=...), None)
imagenet_model_dict: Mapping[str, ZooEntry] = register_zoo("imagenet", {
    "ResNet18": (ResNet18, None),
    "ResNet34": (ResNet34, None),
    "ResNet50": (ResNet50, None),
    "ResNet101": (ResNet101, None),
    "MobileNetV1": (MobileNetV1, None),
})

__all__ = [
    "imagenet_model_dict",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet101",
    "MobileNetV1",
    "load_torchvision_weights",
]
