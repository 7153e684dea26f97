"""The model-zoo registry: zoos of mdistiller-compatible networks, looked up by the dataset's zoo name."""

from __future__ import annotations

import inspect
from typing import Callable, List, Mapping, Optional, Tuple

from torch import nn

from ..dataset.registry import dataset_info
from ..errors import ConfigError, UnknownNameError
from ..registry import Registry
from .timm_adapter import is_timm_name, timm_model_name, timm_names_hint
from .timm_pretrained import build_timm

#: a zoo entry: (builder(num_classes=...[, pretrained=...]), default teacher checkpoint path or None)
ZooEntry = Tuple[Callable[..., nn.Module], Optional[str]]

#: zoo name -> its models (model name -> entry)
MODEL_ZOOS: Registry[Registry[ZooEntry]] = Registry("model zoo")


def _new_zoo(zoo: str) -> Registry[ZooEntry]:
    return Registry(f"{zoo} model (DISTILLER.TEACHER / STUDENT)")


def register_zoo(zoo: str, models: Mapping[str, ZooEntry]) -> Registry[ZooEntry]:
    """Make ``models`` (name -> entry, e.g. mdistiller's ``cifar_model_dict``) the zoo ``zoo``; returns the
    zoo's registry (a mapping, as mdistiller's dict)."""
    registry = _new_zoo(zoo)
    for name, entry in models.items():
        registry.register(name, entry)
    return MODEL_ZOOS.register(zoo, registry)


def register_model(name: str, zoo: str = "cifar", checkpoint: Optional[str] = None) -> Callable:
    """Decorator: add ``builder(num_classes=...)`` to ``zoo`` (created if new) as ``name``, with the path of
    its default teacher checkpoint (relative to the working directory) when one is released."""

    def wrap(builder):
        models = MODEL_ZOOS.get(zoo, None)
        if models is None:
            models = MODEL_ZOOS.register(zoo, _new_zoo(zoo))
        models.register(name, (builder, checkpoint))
        return builder

    return wrap


def model_zoo(zoo: str) -> Registry[ZooEntry]:
    """The models of ``zoo``; an unknown zoo lists the known ones."""
    return MODEL_ZOOS.get(zoo)


def zoo_for(dataset: str) -> str:
    """The zoo a dataset's models come from: the one its registration names (``cifar100`` -> ``cifar``);
    a zoo name is accepted as itself."""
    if dataset in MODEL_ZOOS:
        return dataset
    return dataset_info(dataset).model_zoo


def model_names(dataset: str) -> List[str]:
    """The valid ``DISTILLER.TEACHER`` / ``STUDENT`` names for ``dataset`` (a dataset or zoo name)."""
    return model_zoo(zoo_for(dataset)).names()


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
    builder, checkpoint = _zoo_entry(name, dataset)
    takes_pretrained = "pretrained" in inspect.signature(builder).parameters
    if pretrained and not takes_pretrained:
        raise ConfigError(
            f"model {name!r} has no downloadable pretrained weights; load a checkpoint "
            f"(e.g. {checkpoint or 'download_ckpts/cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth'})"
        )
    if takes_pretrained:
        return builder(num_classes=num_classes, pretrained=pretrained)
    return builder(num_classes=num_classes)


def check_model_name(name: str, dataset: str) -> None:
    """Raise ``UnknownNameError`` listing the valid names unless ``name`` is a model of ``dataset``'s zoo or a
    ``timm/`` model timm knows."""
    if is_timm_name(name):
        timm_model_name(name)
    else:
        _zoo_entry(name, dataset)


def _zoo_entry(name: str, dataset: str) -> ZooEntry:
    """``name``'s entry in ``dataset``'s zoo; unknown: the registry's message and where else a model may come from."""
    try:
        return model_zoo(zoo_for(dataset)).get(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"{err.args[0]}; {timm_names_hint()}") from None
