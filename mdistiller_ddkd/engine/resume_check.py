"""``--resume`` compares the new config with the run's saved ``config.yaml``.

A key either changes the run's maths (method, models, data, schedule, batch, seed, precision, ...) or it
does not (where output goes, how data is loaded, how far to train). Only the second kind is listed,
in ``HARMLESS_KEYS``: every other key — including keys that plugins add — changes the maths, and
changing one refuses the resume unless the user says ``--resume-with-changes``. Harmless changes are
allowed and noted in the worklog.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

from yacs.config import CfgNode as CN

from .cfg import ConfigError, build_default_config, iter_flat, read_config_file

#: keys (or prefixes ending with ".") a resumed run may change without changing what it computes:
#: logging and output naming, data location and loading, the device and its memory layout/compilation, the
#: teacher checkpoint path (the teacher's weights are restored from ``latest``), and the number of epochs
#: (extending a run is what --resume is for)
HARMLESS_KEYS: Tuple[str, ...] = (
    "LOG.", "EXPERIMENT.PROJECT", "EXPERIMENT.NAME", "EXPERIMENT.TAG",
    "DATASET.ROOT", "DATASET.DOWNLOAD", "DATASET.CHECK_INTEGRITY", "DATASET.NUM_WORKERS", "DATASET.TEST.BATCH_SIZE",
    "SOLVER.EPOCHS", "SOLVER.DEVICE", "SOLVER.CHANNELS_LAST", "SOLVER.COMPILE", "DISTILLER.TEACHER_CKPT",
)
_ABSENT = "(absent)"


class Change(NamedTuple):
    key: str
    saved: Any
    current: Any

    def __str__(self) -> str:
        return f"{self.key} {self.saved!r} -> {self.current!r}"


def is_harmless(key: str) -> bool:
    """Whether changing ``key`` on resume leaves the run's maths unchanged."""
    return any(key.startswith(k) if k.endswith(".") else key == k for k in HARMLESS_KEYS)


def _normal(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    return value


def _flat(mapping: Dict, prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = _normal(value)
    return out


def config_changes(saved: Dict, current: CN) -> List[Change]:
    """Every leaf key whose value differs between the saved config (a nested dict) and ``current``; a key
    the saved file lacks (added to the toolbox since) counts only if ``current`` moves it off its default."""
    old = _flat(saved)
    new = dict((k, _normal(v)) for k, v in iter_flat(current))
    defaults = dict((k, _normal(v)) for k, v in iter_flat(build_default_config()))
    changes = []
    for key in sorted(set(old) | set(new)):
        before = old.get(key, defaults.get(key, _ABSENT))
        after = new.get(key, _ABSENT)
        if before != after:
            changes.append(Change(key, before, after))
    return changes


def split_changes(changes: Iterable[Change]) -> Tuple[List[Change], List[Change]]:
    """``(maths changes, harmless changes)``."""
    changes = list(changes)
    return [c for c in changes if not is_harmless(c.key)], [c for c in changes if is_harmless(c.key)]


def check_resume_config(saved_path: str, cfg: CN, allow_changes: bool = False) -> List[Change]:
    """The changes to note when ``cfg`` resumes the run whose config is ``saved_path``; raises
    ``ConfigError`` (one line, listing the keys) for maths changes unless ``allow_changes``."""
    if not os.path.isfile(saved_path):
        return []  # a run of an older version, or of mdistiller itself: nothing to compare with
    try:
        saved = read_config_file(saved_path)
    except ConfigError as err:
        if allow_changes:
            return []
        raise ConfigError(f"--resume: {err}; restore it, or pass --resume-with-changes to resume "
                                  f"without comparing configs") from None
    changes = config_changes(saved, cfg)
    maths, _ = split_changes(changes)
    if maths and not allow_changes:
        shown = ", ".join(map(str, maths[:8])) + (f", ... ({len(maths) - 8} more)" if len(maths) > 8 else "")
        raise ConfigError(
            f"--resume: the config differs from the run's {saved_path} in keys that change what it computes: "
            f"{shown}. Restore them to continue this run, pass --resume-with-changes to continue it with the new "
            f"values anyway, or start a new run (another EXPERIMENT.NAME)")
    return changes


def describe(changes: Iterable[Change], limit: Optional[int] = None) -> str:
    items = [str(c) for c in changes]
    return ", ".join(items[:limit] if limit else items)
