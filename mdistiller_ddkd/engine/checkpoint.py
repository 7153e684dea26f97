"""Checkpoints in mdistiller's layout, written atomically and read with ``weights_only=True``."""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch
from torch import nn


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's keys or shapes differ from the model it is loaded into."""


def save_checkpoint_atomic(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename: a crash never leaves half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path: str, map_location: Any = "cpu") -> Any:
    """Read a checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {os.path.abspath(path)}")
    return torch.load(path, map_location=map_location, weights_only=True)


def extract_state_dict(checkpoint: Any) -> Mapping[str, torch.Tensor]:
    """The model state dict of a checkpoint: mdistiller's ``{"model": state_dict}`` or a bare state dict;
    a ``module.`` prefix (DataParallel/DDP) is removed."""
    state = checkpoint["model"] if isinstance(checkpoint, Mapping) and "model" in checkpoint else checkpoint
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


def rng_state() -> Dict[str, Any]:
    """Python, numpy and torch (CPU and CUDA) RNG states as tensors and plain lists (weights_only-safe)."""
    np_state = np.random.get_state()
    state = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
