"""timm models as teachers and students: ``timm/<model name>`` builds timm's own model and extends its class
with the zoo's ``forward`` (``(logits, feats)``), so every method sees the zoo interface while the state dict
stays timm's (a saved student loads into ``timm.create_model`` unchanged).

``feats["feats"]`` are timm's ``forward_intermediates`` maps (NCHW, transformers' tokens too), ending with the
map the head pools; ``feats["pooled_feat"]`` is ``forward_head(pre_logits=True)``. timm gives no pre-activation
maps, so there is no ``"preact_feats"`` (methods that need them refuse the pair).
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..errors import ConfigError, UnknownNameError

#: the prefix of ``DISTILLER.TEACHER`` / ``STUDENT`` names that timm builds
TIMM_PREFIX = "timm/"
#: what to install for them
TIMM_INSTALL = "pip install 'mdistiller-ddkd[timm]'"


def is_timm_name(name: str) -> bool:
    """Whether ``name`` addresses a timm model (``timm/<model name>``)."""
    return str(name).startswith(TIMM_PREFIX)


def timm_available() -> bool:
    """Whether timm can be imported here."""
    return importlib.util.find_spec("timm") is not None


def import_timm():
    """The timm module, imported on first use; without it one line naming the extra to install."""
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise ConfigError(f"timm/... models need the timm package, which is not installed: {TIMM_INSTALL}") from None


def timm_names_hint() -> str:
    """What the unknown-model message says about timm models, installed or not."""
    if timm_available():
        return "or any timm model as timm/<model name> (e.g. timm/resnet18)"
    return f"timm models (timm/<model name>) need timm: {TIMM_INSTALL}"


def timm_model_name(name: str) -> str:
    """The timm name (``resnet50.a1_in1k``) of ``timm/resnet50.a1_in1k``; an unknown one says how to find names."""
    timm = import_timm()
    model = str(name)[len(TIMM_PREFIX):]
    if not timm.is_model(model):
        raise UnknownNameError(f"unknown timm model {model!r} (from {name!r}); list timm's names with "
                               f"python -c \"import timm; print(timm.list_models('*{model.split('.')[0][:6]}*'))\"")
    return model


class TimmFeatures:
    """Mixin put in front of a timm model's class: the zoo's forward over timm's feature API."""

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, Any]]:
        final, maps = self.forward_intermediates(x)
        feats: List[Tensor] = list(maps)
        if final.dim() == 4 and final is not feats[-1] and final.shape[1] == self.num_features:
            feats.append(final)  # a head convolution after the last stage (EfficientNet): the map that is pooled
        logits = self.forward_head(final)
        return logits, {"feats": feats, "pooled_feat": self.forward_head(final, pre_logits=True)}

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``, probed at the input size the model was built for."""
        with torch.no_grad():
            was_training = self.training
            self.eval()
            try:
                ref = next(self.parameters())
                image = torch.zeros(1, 3, *self.zoo_input_size, device=ref.device, dtype=ref.dtype)
                return [int(f.shape[1]) for f in self(image)[1]["feats"]]
            finally:
                self.train(was_training)

    def get_bn_before_relu(self) -> List[nn.Module]:
        raise NotImplementedError("timm models expose no BatchNorm-before-ReLU list")


_ADAPTED: Dict[type, type] = {}


def _adapted_class(cls: type) -> type:
    """``cls`` with ``TimmFeatures`` in front (one class per timm class; same name, so messages read as timm's)."""
    if cls not in _ADAPTED:
        _ADAPTED[cls] = type(cls.__name__, (TimmFeatures, cls), {})
    return _ADAPTED[cls]


def _needs_img_size(model_name: str, input_size: Sequence[int]) -> bool:
    cfg = import_timm().models.get_pretrained_cfg(model_name)
    return bool(cfg is not None and cfg.fixed_input_size and tuple(cfg.input_size[1:]) != tuple(input_size))


def create_timm(name: str, num_classes: int, input_size: Sequence[int], **kwargs: Any) -> nn.Module:
    """timm's ``name`` (``timm/...``) for ``num_classes`` and ``input_size`` (H, W), with the zoo's forward.

    ``kwargs`` go to ``timm.create_model`` (``pretrained``, ``pretrained_cfg_overlay``, ``drop_rate`` ...). A
    fixed-size model (ViT) gets ``img_size`` where it takes one; a model that cannot run at ``input_size``
    is refused in one line.
    """
    timm = import_timm()
    model_name = timm_model_name(name)
    size = tuple(int(s) for s in input_size)
    if "img_size" not in kwargs and _needs_img_size(model_name, size):
        kwargs["img_size"] = size
    try:
        model = timm.create_model(model_name, num_classes=num_classes, **kwargs)
    except TypeError as err:  # a constructor argument the architecture does not take
        raise ConfigError(f"timm model {model_name} does not take {err} (DISTILLER.TIMM.*_KWARGS, or img_size for "
                          f"a fixed input size); choose another model or dataset") from None
    model.__class__ = _adapted_class(type(model))
    model.zoo_input_size = size
    _check_runs(model, name, size)
    return model


def _check_runs(model: nn.Module, name: str, size: Tuple[int, int]) -> None:
    """One zero image through the adapted forward: models without timm's feature API, or that cannot take
    ``size``, are refused here rather than mid-training."""
    try:
        model.get_stage_channels()
    except NotImplementedError:
        raise ConfigError(f"{name} has no forward_intermediates (timm's feature API), which the methods read; "
                          f"choose another timm model") from None
    except (RuntimeError, AssertionError, ValueError) as err:
        detail = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise ConfigError(f"{name} cannot run on {size[0]}x{size[1]} images ({detail}); choose another model, or "
                          f"pass img_size through DISTILLER.TIMM.*_KWARGS where it takes one") from None
