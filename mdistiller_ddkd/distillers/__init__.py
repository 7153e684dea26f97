"""Distillers: one module per method, each registering itself (and its config node) on import.

``distiller_dict`` maps upper-case names (``NONE``, ``KD``, ``DKD``, ``DDKD``, ...) to classes, as in
mdistiller. This module is the composition root of the distiller registry: the built-in methods are the
modules imported below, one file each (a new method is one new file and its name in that line); a plugin
registers its own with ``register_distiller``.
"""

from . import (  # noqa: F401  (the built-in methods register themselves)
    at,
    crd,
    ddkd,
    diffkd,
    dist,
    dkd,
    fitnet,
    kd,
    kdsvd,
    nst,
    ofd,
    pkt,
    reviewkd,
    rkd,
    sp,
    vanilla,
    vid,
)
from .base import Distiller
from .registry import config_nodes, declare_config_node, distiller_dict, get_distiller_class, register_distiller
from .vanilla import Vanilla  # mdistiller's public name

__all__ = [
    "Distiller",
    "Vanilla",
    "config_nodes",
    "declare_config_node",
    "distiller_dict",
    "get_distiller_class",
    "register_distiller",
]
