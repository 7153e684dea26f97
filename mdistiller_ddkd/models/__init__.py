"""Model zoo: mdistiller-compatible CIFAR-100 and ImageNet networks.

Every model's ``forward(x)`` returns ``(logits, feats)`` where ``feats`` holds ``"feats"`` (stage outputs,
the last one being the final feature map before pooling), ``"preact_feats"`` (the same before each
stage's last ReLU; absent for MobileNetV2) and ``"pooled_feat"``; models offer ``get_stage_channels()``
and ``get_bn_before_relu()`` (raising NotImplementedError where mdistiller has none).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from torch import nn

from .cifar import CIFAR_TEACHERS, cifar_model_dict, teacher_checkpoint_path
from .imagenet import imagenet_model_dict, load_torchvision_weights

__all__ = [
    "cifar_model_dict",
    "imagenet_model_dict",
    "get_model",
    "CIFAR_TEACHERS",
    "teacher_checkpoint_path",
    "load_torchvision_weights",
]

_DATASET_ALIASES = {"cifar100": "cifar100", "cifar": "cifar100", "imagenet": "imagenet"}


def _model_dict(dataset: str) -> Dict[str, Tuple[Callable[..., nn.Module], Optional[str]]]:
    key = _DATASET_ALIASES.get(dataset.lower())
    if key is None:
        raise KeyError(f"unknown dataset {dataset!r}; expected one of {sorted(set(_DATASET_ALIASES))}")
    return cifar_model_dict if key == "cifar100" else imagenet_model_dict


def get_model(name: str, dataset: str = "cifar100", num_classes: int = 100, pretrained: bool = False) -> nn.Module:
    """Build the model ``name`` of ``dataset`` ("cifar100" or "imagenet") with ``num_classes`` outputs.

    ``pretrained=True`` is only meaningful for the ImageNet ResNets (torchvision's IMAGENET1K_V1
    weights, needing network access or the file in the torch hub cache); for CIFAR models it raises
    ValueError: load a teacher checkpoint instead (``cifar_model_dict[name][1]``).
    Raises KeyError listing the valid names when ``name`` is unknown.
    """
    models = _model_dict(dataset)
    if name not in models:
        raise KeyError(f"unknown {dataset} model {name!r}; valid names: {', '.join(models)}")
    builder = models[name][0]
    if models is imagenet_model_dict:
        return builder(num_classes=num_classes, pretrained=pretrained)
    if pretrained:
        raise ValueError(
            f"CIFAR model {name!r} has no downloadable pretrained weights; load a checkpoint "
            f"(e.g. {models[name][1] or 'download_ckpts/cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth'})"
        )
    return builder(num_classes=num_classes)
