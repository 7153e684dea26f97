"""Where the packaged configs live: ``configs/`` beside the package in a checkout, or
``mdistiller_ddkd/configs/`` (package data) once pip-installed."""

from __future__ import annotations

import os
from typing import List, Optional

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def config_roots() -> List[str]:
    roots = [os.path.join(_PACKAGE_DIR, "configs"), os.path.join(os.path.dirname(_PACKAGE_DIR), "configs")]
    return [r for r in roots if os.path.isdir(r)]


def packaged_config(relative: str) -> Optional[str]:
    """Absolute path of a packaged config given as ``configs/...`` or relative to ``configs/``."""
    rel = relative.replace("\\", "/")
    if rel.startswith("configs/"):
        rel = rel[len("configs/"):]
    for root in config_roots():
        candidate = os.path.join(root, rel)
        if os.path.isfile(candidate):
            return candidate
    return None


def list_packaged_configs() -> List[str]:
    """Every packaged config as ``configs/<...>.yaml``."""
    found = set()
    for root in config_roots():
        for dirpath, _, files in os.walk(root):
            for name in files:
                if name.endswith(".yaml"):
                    found.add("configs/" + os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return sorted(found)
