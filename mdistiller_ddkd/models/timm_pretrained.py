"""timm's pretrained weights, found offline first: a tag whose file is in the Hugging Face or torch hub cache
loads from that file (no network); one that is not is downloaded by timm only when downloads are allowed,
otherwise refused in one line naming the file to provide."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

from torch import nn

from ..errors import MissingInputError
from .timm_adapter import create_timm, import_timm, timm_model_name

#: the files timm reads from a Hugging Face repository, in its order of preference
_HF_FILES = ("model.safetensors", "pytorch_model.bin")


def _pretrained_cfg(model_name: str):
    return import_timm().models.get_pretrained_cfg(model_name)


def cached_pretrained_file(model_name: str) -> Optional[str]:
    """The local file of ``model_name``'s pretrained weights (timm name with or without tag), or None."""
    cfg = _pretrained_cfg(model_name)
    if cfg is None:
        return None
    if cfg.file:
        return cfg.file if os.path.isfile(cfg.file) else None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for filename in ([cfg.hf_hub_filename] if cfg.hf_hub_filename else _HF_FILES):
            found = try_to_load_from_cache(cfg.hf_hub_id, filename)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    if cfg.url:
        import torch.hub

        path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(cfg.url.split("?")[0]))
        return path if os.path.isfile(path) else None
    return None


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def pretrained_classes(name: str) -> Optional[int]:
    """How many classes the pretrained weights of ``timm/<name>`` classify; None when timm has none for it."""
    cfg = _pretrained_cfg(timm_model_name(name))
    return None if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file) else int(cfg.num_classes)


def pretrained_kwargs(name: str, download: bool = True) -> Dict[str, Any]:
    """``timm.create_model`` arguments that load ``timm/<name>``'s pretrained weights: from the cached file when
    there is one; else by timm's download when ``download`` and the hub is online; else one line saying
    which file or tag to provide."""
    model_name = timm_model_name(name)
    path = cached_pretrained_file(model_name)
    if path is not None:
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": path}}
    cfg = _pretrained_cfg(model_name)
    where = (cfg.hf_hub_id or cfg.url) if cfg is not None else None
    if where is None:
        raise MissingInputError(f"timm has no pretrained weights for {model_name}; set DISTILLER.TEACHER_CKPT to "
                                f"a checkpoint of it (.safetensors, .pth or .pt in timm's layout)")
    if not download or _hub_offline():
        raise MissingInputError(f"pretrained weights of {model_name} ({where}) are not in the local cache and "
                                f"downloads are off; put the file in the Hugging Face cache, or pass it as "
                                f"DISTILLER.TEACHER_CKPT (.safetensors, .pth or .pt in timm's layout)")
    return {"pretrained": True}


def build_timm(name: str, num_classes: int, input_size: Sequence[int], pretrained: bool = False,
               download: bool = True, **kwargs: Any) -> nn.Module:
    """``timm/<name>`` with the zoo's forward (``create_timm``), with timm's pretrained weights when
    ``pretrained`` (``pretrained_kwargs``); a failed download is one line."""
    if not pretrained:
        return create_timm(name, num_classes, input_size, **kwargs)
    weights = pretrained_kwargs(name, download)
    try:
        return create_timm(name, num_classes, input_size, **weights, **kwargs)
    except OSError as err:  # the download failed (no network, a hub error): what to do instead
        raise MissingInputError(f"cannot download the pretrained weights of {name} ({type(err).__name__}: "
                                f"{str(err).strip()[:160]}); put the file in the Hugging Face cache or pass it as "
                                f"DISTILLER.TEACHER_CKPT") from None
