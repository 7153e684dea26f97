"""The distiller registry: ``register_distiller("NAME", config=node)`` fills ``distiller_dict`` and
declares the method's config node, so that a new method is one new file in this package."""

from __future__ import annotations

from typing import Callable, Dict, Optional, Type

from yacs.config import CfgNode

from ..errors import UnknownNameError

distiller_dict: Dict[str, type] = {}
config_nodes: Dict[str, CfgNode] = {}


def register_distiller(name: str, config: Optional[CfgNode] = None) -> Callable[[Type], Type]:
    """Class decorator: register ``cls`` as ``distiller_dict[name]`` and, when given, ``config`` as the
    default config node ``CFG[name]`` (several methods may share a node; it is declared once)."""
    key = name.upper()

    def wrap(cls: Type) -> Type:
        if key in distiller_dict and distiller_dict[key] is not cls:
            raise ValueError(f"distiller {key!r} is registered twice ({distiller_dict[key]} and {cls})")
        distiller_dict[key] = cls
        cls.registry_name = key
        if config is not None:
            if key in config_nodes and config_nodes[key] is not config:
                raise ValueError(f"config node {key!r} is declared twice")
            config_nodes[key] = config
        return cls

    return wrap


def declare_config_node(name: str, node: CfgNode) -> CfgNode:
    """Declare a config node that no single distiller owns (e.g. one shared by two methods)."""
    if name in config_nodes and config_nodes[name] is not node:
        raise ValueError(f"config node {name!r} is declared twice")
    config_nodes[name] = node
    return node


def get_distiller_class(name: str) -> type:
    """Look a distiller up by name; an unknown name lists the valid ones."""
    try:
        return distiller_dict[name.upper()]
    except KeyError:
        raise UnknownNameError(
            f"unknown distiller {name!r} (DISTILLER.TYPE); registered: {', '.join(sorted(distiller_dict))}"
        ) from None
