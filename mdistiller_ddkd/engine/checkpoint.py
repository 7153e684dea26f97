"""Checkpoints in mdistiller's layout, written atomically and read with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import re
import struct
import warnings
import zipfile
from typing import Any, List, Mapping

import torch
from torch import nn

from ..errors import CheckpointMismatchError, CheckpointReadError, MissingInputError
from ..fileio import atomic_write

__all__ = ["CheckpointMismatchError", "describe_state_dict_mismatch", "extract_state_dict", "load_checkpoint",
           "load_model_weights", "save_checkpoint_atomic"]


def save_checkpoint_atomic(obj: Any, path: str) -> None:
    """``torch.save`` through ``fileio.atomic_write`` (all or nothing; a full disk is one ``DiskError``)."""
    atomic_write(path, lambda f: torch.save(obj, f))


#: what ``torch.load`` raises for a file that is truncated, not a checkpoint, or refused by weights_only
_LOAD_FAILURES = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, KeyError, AttributeError,
                  IndexError, TypeError, UnicodeDecodeError, struct.error, zipfile.BadZipFile)


def _load_failure(path: str, err: BaseException, todo: str) -> CheckpointReadError:
    text = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
    refused = re.search(r"GLOBAL ([\w.]+)", text)
    where = os.path.abspath(path)
    if refused:
        return CheckpointReadError(
            f"checkpoint {where} refers to {refused.group(1)}, which a checkpoint of tensors never needs: refused "
            f"unread (weights_only loading; the file may be malicious) — use a checkpoint saved as "
            f"{{'model': state_dict}} from a source you trust")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if line.startswith("Unsupported")), lines[0] if lines else type(err).__name__)
    return CheckpointReadError(
        f"cannot read checkpoint {where}: it is truncated, not a PyTorch checkpoint, or holds objects other than "
        f"tensors and plain containers ({type(err).__name__}: {detail.split('. ')[0][:160]}) — {todo}")


def load_checkpoint(path: str, map_location: Any = "cpu",
                    todo: str = "copy or download it again, or point to another file") -> Any:
    """Read a checkpoint safely (``weights_only=True``: tensors and plain containers only); a file that is
    truncated, garbage or refused raises ``CheckpointReadError`` naming it and saying what to do (``todo``)."""
    if not os.path.isfile(path):
        raise MissingInputError(f"checkpoint not found: {os.path.abspath(path)}")
    if path.endswith(".safetensors"):
        return _load_safetensors(path, map_location, todo)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol notices of torch's safe unpickler
            return torch.load(path, map_location=map_location, weights_only=True)
    except _LOAD_FAILURES as err:
        raise _load_failure(path, err, todo) from None


def _load_safetensors(path: str, map_location: Any, todo: str) -> Mapping[str, torch.Tensor]:
    """A ``.safetensors`` file's tensors (a format that holds nothing else)."""
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise MissingInputError(f"{path} is a .safetensors file, which needs the safetensors package: "
                                f"pip install safetensors") from None
    device = map_location if isinstance(map_location, str) else str(map_location or "cpu")
    try:
        return load_file(path, device=device)
    except (SafetensorError, OSError, ValueError) as err:  # truncated or not a safetensors file
        raise _load_failure(path, err, todo) from None


#: the keys under which checkpoints hold a model's state dict: mdistiller's, then timm's training scripts'
_STATE_DICT_KEYS = ("model", "state_dict")


def extract_state_dict(checkpoint: Any) -> Mapping[str, torch.Tensor]:
    """The model state dict of a checkpoint: mdistiller's ``{"model": state_dict}``, timm's
    ``{"state_dict": ...}`` or a bare state dict; a ``module.`` prefix (DataParallel/DDP) is removed."""
    key = next((k for k in _STATE_DICT_KEYS if isinstance(checkpoint, Mapping) and k in checkpoint), None)
    state = checkpoint[key] if key is not None else checkpoint
    if not isinstance(state, Mapping):
        raise CheckpointMismatchError(f"checkpoint holds {type(state).__name__}, not a state dict")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def describe_state_dict_mismatch(model: nn.Module, state: Mapping[str, torch.Tensor], limit: int = 10) -> List[str]:
    """Human-readable lines listing missing keys, unexpected keys and shape mismatches (empty: they match)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    lines = []
    for title, items in (("missing in checkpoint", missing), ("unexpected in checkpoint", unexpected),
                         ("shape mismatch", shapes)):
        if items:
            shown = ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")
            lines.append(f"{title} ({len(items)}): {shown}")
    return lines


def load_model_weights(model: nn.Module, path: str, what: str = "model") -> None:
    """Load ``path`` into ``model`` strictly; mismatches raise an error listing exactly what differs."""
    state = extract_state_dict(load_checkpoint(path))
    problems = describe_state_dict_mismatch(model, state)
    if problems:
        raise CheckpointMismatchError(
            f"{what} checkpoint {path} does not match the {type(model).__name__} architecture:\n  "
            + "\n  ".join(problems)
            + "\nCheck DISTILLER.TEACHER / DISTILLER.TEACHER_CKPT (and the dataset's number of classes)."
        )
    model.load_state_dict(state, strict=True)
