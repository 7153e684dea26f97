"""Distillers: one module per method, each registering itself (and its config node) on import.

``distiller_dict`` maps upper-case names (``NONE``, ``KD``, ``DKD``, ``DDKD``, ...) to classes, as in
mdistiller. Every module in this package is imported here, so adding a method is adding one file.
"""

import importlib
import pkgutil

from .base import Distiller
from .registry import config_nodes, declare_config_node, distiller_dict, get_distiller_class, register_distiller

_INFRASTRUCTURE = {"base", "registry"}
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _INFRASTRUCTURE and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

from .vanilla import Vanilla  # noqa: E402  (mdistiller's public name)

__all__ = [
    "Distiller",
    "Vanilla",
    "config_nodes",
    "declare_config_node",
    "distiller_dict",
    "get_distiller_class",
    "register_distiller",
]
