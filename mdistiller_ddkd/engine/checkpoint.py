"""Checkpoints in mdistiller's layout, written atomically and read with ``weights_only=True``."""

from __future__ import annotations

import os
import pickle
import random
import re
import struct
import tempfile
import warnings
import zipfile
from typing import Any, BinaryIO, Callable, Dict, List, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointReadError, UserError


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint's keys or shapes differ from the model it is loaded into."""


#: what ``atomic_write`` names its temporary files: ``.<name>.<random>.tmp`` beside the target
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str, write: Callable[[BinaryIO], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, fsync it, rename it over ``path`` and fsync the
    folder: a crash leaves either the old file or the new one, never half a file. On any failure (disk
    full, a signal) the temporary file is removed and the old file is untouched."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + os.path.basename(path) + ".", suffix=TEMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_dir(directory)


def save_checkpoint_atomic(obj: Any, path: str) -> None:
    """``torch.save`` through ``atomic_write``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def write_text_atomic(path: str, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) through ``atomic_write``."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_stale_temp_files(directory: str) -> List[str]:
    """Remove the temporary files ``atomic_write`` left in ``directory`` when a process was killed
    mid-write; call it only while holding the folder's lock (another writer's file would go too)."""
    removed = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else ():
        path = os.path.join(directory, name)
        if name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX) and os.path.isfile(path):
            os.remove(path)
            removed.append(name)
    return removed


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        raise FileNotFoundError(f"checkpoint not found: {os.path.abspath(path)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle-protocol notices of torch's safe unpickler
            return torch.load(path, map_location=map_location, weights_only=True)
    except _LOAD_FAILURES as err:
        raise _load_failure(path, err, todo) from None


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
