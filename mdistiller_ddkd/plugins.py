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

from .errors import PluginError

__all__ = ["ENTRY_POINT_GROUP", "ENV_VAR", "PluginError", "add_plugins_argument", "load_plugins",
           "loaded_plugin_modules", "plugins_from_args", "split_modules"]

ENTRY_POINT_GROUP = "mdistiller_ddkd.plugins"
ENV_VAR = "MDISTILLER_DDKD_PLUGINS"
#: the modules imported as plugins so far: a bug inside one is reported as theirs (``cli/runner.py``)
_LOADED: List[str] = []


def split_modules(value: Optional[str]) -> List[str]:
    """``"a.b, c"`` -> ``["a.b", "c"]``."""
    return [m.strip() for m in (value or "").split(",") if m.strip()]


def _is_missing(err: ModuleNotFoundError, module: str) -> bool:
    """True when ``err`` says ``module`` itself (or a package above it) is absent, not one of its imports."""
    return err.name is not None and (module == err.name or module.startswith(err.name + "."))


def _import(module: str, source: str) -> None:
    """Import a plugin module. A module that is not there is the user's mistake (one line); any other failure
    while importing it is a bug of the plugin's (its traceback, blamed on it: see ``cli/runner.run_main``)."""
    if module not in _LOADED:
        _LOADED.append(module)
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if not _is_missing(err, module):
            raise
        _LOADED.remove(module)
        raise PluginError(
            f"cannot import plugin module {module!r} ({source}): no module named {err.name!r} — check that it is "
            f"installed or on PYTHONPATH (run from its folder, or set PYTHONPATH)"
        ) from None


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
    return loaded_plugin_modules()


def loaded_plugin_modules() -> List[str]:
    """The modules imported as plugins so far (also one whose import is under way)."""
    return list(_LOADED)


def add_plugins_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--plugins a.b,c`` option of every command-line tool."""
    parser.add_argument("--plugins", default="", metavar="MODULES",
                        help="comma-separated modules to import first; they register datasets, models and "
                        f"methods (also: ${ENV_VAR}, and the '{ENTRY_POINT_GROUP}' entry points)")


def plugins_from_args(args: argparse.Namespace) -> List[str]:
    """Load what ``--plugins`` names (and the entry points, and the environment variable)."""
    return load_plugins(split_modules(getattr(args, "plugins", "")))
