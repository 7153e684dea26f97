"""The shipped configs (every ``configs/**/*.yaml`` on disk, so new ones are covered without editing this
file): each loads, and states only what differs from the defaults of ``build_default_config()`` (plus the
identity keys that say what the run is)."""

from __future__ import annotations

import os
from typing import Iterator, List, Tuple

import pytest
import yaml

from mdistiller_ddkd.engine.cfg import build_default_config, load_config
from tests.helpers import REPO_ROOT

CONFIG_ROOT = os.path.join(REPO_ROOT, "configs")

#: kept in every file even at their default value: they name the experiment, the method, the pair and the data
IDENTITY_KEYS = frozenset({
    "EXPERIMENT.NAME", "EXPERIMENT.TAG", "EXPERIMENT.PROJECT",
    "DISTILLER.TYPE", "DISTILLER.TEACHER", "DISTILLER.STUDENT", "DATASET.TYPE",
})


def _config_files() -> List[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(CONFIG_ROOT):
        dirnames.sort()
        found += [os.path.relpath(os.path.join(dirpath, n), REPO_ROOT) for n in sorted(filenames)
                  if n.endswith(".yaml")]
    return found


def _leaves(node: dict, prefix: str = "") -> Iterator[Tuple[str, object]]:
    """(``A.B.C``, value) of every leaf key written in a YAML mapping."""
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


CONFIG_FILES = _config_files()


def test_the_shipped_configs_are_found():
    assert len(CONFIG_FILES) >= 140, CONFIG_FILES  # 11 methods x 11 CIFAR pairs, vanilla, ImageNet, demo


@pytest.mark.parametrize("relpath", CONFIG_FILES)
def test_config_loads_and_states_only_what_differs_from_the_defaults(relpath):
    path = os.path.join(REPO_ROOT, relpath)
    cfg = load_config(path)
    with open(path, encoding="utf-8") as f:
        written = yaml.safe_load(f) or {}
    defaults = build_default_config()
    redundant = [key for key, _ in _leaves(written)
                 if key not in IDENTITY_KEYS and _get(cfg, key) == _get(defaults, key)]
    assert not redundant, (f"{relpath} restates default values: {', '.join(redundant)} — delete these keys "
                           f"(a config states only what differs from mdistiller_ddkd.engine.cfg's defaults)")


def test_a_restated_default_is_caught(tmp_path):
    """The check above on a file that restates one default (SOLVER.MOMENTUM) next to a real change."""
    path = tmp_path / "c.yaml"
    path.write_text("DISTILLER:\n  TYPE: KD\nSOLVER:\n  MOMENTUM: 0.9\n  LR: 0.01\n")
    cfg, defaults = load_config(str(path)), build_default_config()
    written = yaml.safe_load(path.read_text())
    assert [k for k, _ in _leaves(written) if k not in IDENTITY_KEYS
            and _get(cfg, k) == _get(defaults, k)] == ["SOLVER.MOMENTUM"]
