"""Model zoo: mdistiller-compatible CIFAR-100 and ImageNet networks, and the zoo registry.

Every model's ``forward(x)`` returns ``(logits, feats)`` where ``feats`` holds ``"feats"`` (stage outputs,
the last one being the final feature map before pooling), ``"preact_feats"`` (the same before each
stage's last ReLU; absent for MobileNetV2) and ``"pooled_feat"``; models offer ``get_stage_channels()``
and ``get_bn_before_relu()`` (raising NotImplementedError where mdistiller has none).

Zoos map a model name to ``(builder, default teacher checkpoint or None)`` as mdistiller's
``cifar_model_dict``; a dataset names the zoo its models come from (``register_dataset(model_zoo=...)``),
and ``register_model`` adds a model (to a new zoo, too) from any module. ``timm/<model name>`` is any timm
model, adapted to the same interface (``timm_adapter``).
"""

from __future__ import annotations

# the built-in zoos: each module registers its models (the composition root of the model registry)
from . import cifar, imagenet, tiny_imagenet  # noqa: F401
from .cifar import CIFAR_TEACHERS, cifar_model_dict
from .imagenet import imagenet_model_dict, load_torchvision_weights
from .registry import (
    MODEL_ZOOS,
    ZooEntry,
    check_model_name,
    get_model,
    model_names,
    model_zoo,
    register_model,
    register_zoo,
    zoo_for,
)
from .timm_adapter import TIMM_PREFIX, is_timm_name

__all__ = [
    "CIFAR_TEACHERS",
    "MODEL_ZOOS",
    "TIMM_PREFIX",
    "ZooEntry",
    "check_model_name",
    "cifar_model_dict",
    "get_model",
    "imagenet_model_dict",
    "is_timm_name",
    "load_torchvision_weights",
    "model_names",
    "model_zoo",
    "register_model",
    "register_zoo",
    "zoo_for",
]
