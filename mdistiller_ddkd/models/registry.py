"""The model-zoo registry: zoos of mdistiller-compatible networks, looked up by the dataset's zoo name."""

from __future__ import annotations

import inspect
from typing import Callable, Dict, List, Optional, Tuple

from torch import nn

from ..dataset.registry import dataset_info
from ..errors import ConfigError, UnknownNameError
from .timm_adapter import is_timm_name, timm_model_name, timm_names_hint
from .timm_pretrained import build_timm

#: a zoo entry: (builder(num_classes=...[, pretrained=...]), default teacher checkpoint path or None)
ZooEntry = Tuple[Callable[..., nn.Module], Optional[str]]

#: zoo name -> {model name -> entry}
MODEL_ZOOS: Dict[str, Dict[str, ZooEntry]] = {}


def register_zoo(zoo: str, models: Dict[str, ZooEntry]) -> Dict[str, ZooEntry]:
    """Make ``models`` (name -> entry, e.g. mdistiller's ``cifar_model_dict``) the zoo ``zoo``; returns it."""
    if zoo in MODEL_ZOOS and MODEL_ZOOS[zoo] is not models:
        raise ValueError(f"model zoo {zoo!r} is registered twice")
    MODEL_ZOOS[zoo] = models
    return models


def register_model(name: str, zoo: str = "cifar", checkpoint: Optional[str] = None) -> Callable:
    """Decorator: add ``builder(num_classes=...)`` to ``zoo`` (created if new) as ``name``, with the path of
    its default teacher checkpoint (relative to the working directory) when one is released."""

    def wrap(builder):
        models = MODEL_ZOOS.setdefault(zoo, {})
        if name in models and models[name][0] is not builder:
            raise ValueError(f"model {name!r} is registered twice in zoo {zoo!r}")
        models[name] = (builder, checkpoint)
        return builder

    return wrap


def model_zoo(zoo: str) -> Dict[str, ZooEntry]:
    """The models of ``zoo``; an unknown zoo lists the known ones."""
    try:
        return MODEL_ZOOS[zoo]
    except KeyError:
        raise UnknownNameError(f"unknown model zoo {zoo!r}; known: {', '.join(sorted(MODEL_ZOOS))}") from None


def zoo_for(dataset: str) -> str:
    """The zoo a dataset's models come from: the one its registration names (``cifar100`` -> ``cifar``);
    a zoo name is accepted as itself."""
    if dataset in MODEL_ZOOS:
        return dataset
    return dataset_info(dataset).model_zoo


def model_names(dataset: str) -> List[str]:
    """The valid ``DISTILLER.TEACHER`` / ``STUDENT`` names for ``dataset`` (a dataset or zoo name)."""
    return sorted(model_zoo(zoo_for(dataset)))


def get_model(name: str, dataset: str = "cifar100", num_classes: int = 100, pretrained: bool = False,
              **timm_kwargs) -> nn.Module:
    """Build the model ``name`` of ``dataset``'s zoo (a dataset or zoo name) with ``num_classes`` outputs;
    ``timm/<name>`` builds timm's model for the dataset's input size (``timm_kwargs``: see ``build_timm``).

    ``pretrained=True`` needs a builder that takes ``pretrained`` (the ImageNet ResNets: torchvision's
    IMAGENET1K_V1 weights, needing network access or the file in the torch hub cache); for others it
    raises ValueError: load a teacher checkpoint instead. An unknown name lists the valid ones.
    """
    if is_timm_name(name):
        return build_timm(name, num_classes, dataset_info(dataset).input_size, pretrained, **timm_kwargs)
    if timm_kwargs:
        raise ConfigError(f"constructor arguments {sorted(timm_kwargs)} apply to timm/ models only, not {name!r}")
    check_model_name(name, dataset)
    models = model_zoo(zoo_for(dataset))
    builder, checkpoint = models[name]
    takes_pretrained = "pretrained" in inspect.signature(builder).parameters
    if pretrained and not takes_pretrained:
        raise ConfigError(
            f"model {name!r} has no downloadable pretrained weights; load a checkpoint "
            f"(e.g. {checkpoint or 'download_ckpts/cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth'})"
        )
    if takes_pretrained:
        return builder(num_classes=num_classes, pretrained=pretrained)
    return builder(num_classes=num_classes)


def check_model_name(name: str, dataset: str, what: str = "model") -> None:
    """Raise ``UnknownNameError`` listing the valid names unless ``name`` is a model of ``dataset``'s zoo or a
    ``timm/`` model timm knows."""
    if is_timm_name(name):
        timm_model_name(name)
        return
    zoo = zoo_for(dataset)
    if name not in model_zoo(zoo):
        raise UnknownNameError(f"unknown {what} {name!r} for {dataset} (zoo {zoo!r}); valid: "
                               f"{', '.join(model_names(dataset))}; {timm_names_hint()}")
