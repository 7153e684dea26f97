"""Plugins: modules of the user's that register datasets, models, methods, update rules or hooks.

A plugin is any importable module whose import registers things (``register_dataset``, ``register_model``,
``register_distiller``, ...). The command-line tools load, in this order:

1. every ``mdistiller_ddkd.plugins`` entry point of the installed packages (as pytest's ``pytest11``)::

       # the plugin package's pyproject.toml
       [project.entry-points."mdistiller_ddkd.plugins"]
       my_data = "my_package.my_module"

2. the modules named in the ``MDISTILLER_DDKD_PLUGINS`` environment variable (comma-separated);
3. the modules named with ``--plugins a.b,c`` (``ddkd-suite`` passes them on to every run it starts).
"""

from __future__ import annotations

import argparse
import importlib
import os
from importlib import metadata
from typing import List, Optional, Sequence

ENTRY_POINT_GROUP = "mdistiller_ddkd.plugins"
ENV_VAR = "MDISTILLER_DDKD_PLUGINS"

_loaded: List[str] = []


class PluginError(ImportError):
    """A plugin module could not be imported."""


def split_modules(value: Optional[str]) -> List[str]:
    """``"a.b, c"`` -> ``["a.b", "c"]``."""
    return [m.strip() for m in (value or "").split(",") if m.strip()]


def _import(module: str, source: str) -> None:
    try:
        importlib.import_module(module)
    except Exception as err:  # any failure of a user's module is reported as one line
        raise PluginError(
            f"cannot import plugin module {module!r} ({source}): {type(err).__name__}: {err} — check that it is "
            f"installed or on PYTHONPATH (run from its folder, or set PYTHONPATH)"
        ) from None
    if module not in _loaded:
        _loaded.append(module)


def load_plugins(modules: Sequence[str] = (), entry_points: bool = True) -> List[str]:
    """Import the installed entry points, ``$MDISTILLER_DDKD_PLUGINS`` and ``modules``; returns the modules
    loaded so far. Importing twice is harmless (Python caches modules, registries accept re-registration
    of the same object)."""
    if entry_points:
        for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            _import(point.value.split(":")[0], f"entry point {point.name!r} of group {ENTRY_POINT_GROUP}")
    for module in split_modules(os.environ.get(ENV_VAR)):
        _import(module, f"${ENV_VAR}")
    for module in modules:
        _import(module, "--plugins")
    return list(_loaded)


def add_plugins_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--plugins a.b,c`` option of every command-line tool."""
    parser.add_argument("--plugins", default="", metavar="MODULES",
                        help="comma-separated modules to import first; they register datasets, models and "
                        f"methods (also: ${ENV_VAR}, and the '{ENTRY_POINT_GROUP}' entry points)")


def plugins_from_args(args: argparse.Namespace) -> List[str]:
    """Load what ``--plugins`` names (and the entry points, and the environment variable)."""
    return load_plugins(split_modules(getattr(args, "plugins", "")))
