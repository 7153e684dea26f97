"""Tiny-ImageNet model zoo (``zoo="tiny_imagenet"``), as mdistiller's ``tiny_imagenet_model_dict``:
ResNet18 (the CIFAR variant; its released teacher sits at
``download_ckpts/tiny_imagenet_teachers/ResNet18_vanilla/ti_res18``), MobileNetV2 (mdistiller's
Tiny-ImageNet variant) and ShuffleV2 (the CIFAR one, with global average pooling)."""

from __future__ import annotations

from ..cifar.resnetv2 import ResNet18
from ..registry import register_model
from .mobilenetv2 import MobileNetV2Tiny, mobilenetv2_tinyimagenet
from .shufflenetv2 import ShuffleNetV2GAP, ShuffleV2

ZOO = "tiny_imagenet"
#: where mdistiller's Tiny-ImageNet teacher lives, relative to the working directory
TEACHER_CHECKPOINT = "download_ckpts/tiny_imagenet_teachers/ResNet18_vanilla/ti_res18"

register_model("ResNet18", zoo=ZOO, checkpoint=TEACHER_CHECKPOINT)(ResNet18)
register_model("MobileNetV2", zoo=ZOO)(mobilenetv2_tinyimagenet)
register_model("ShuffleV2", zoo=ZOO)(ShuffleV2)

__all__ = ["MobileNetV2Tiny", "ShuffleNetV2GAP", "ShuffleV2", "TEACHER_CHECKPOINT", "mobilenetv2_tinyimagenet"]
