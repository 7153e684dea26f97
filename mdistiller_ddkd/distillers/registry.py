"""The distiller registry: ``register_distiller("NAME", config=node)`` fills ``distiller_dict`` and
declares the method's config node, so that a new method is one new file in this package."""

from __future__ import annotations

from typing import Callable, Optional, Type

from yacs.config import CfgNode

from ..registry import Registry

#: method name (upper case; looked up case-insensitively) -> class, as mdistiller's ``distiller_dict``
distiller_dict: Registry[type] = Registry("method (DISTILLER.TYPE)", normalize=str.upper)
#: top-level config node name -> its default node (``build_default_config()[name]``)
config_nodes: Registry[CfgNode] = Registry("method config node")


def register_distiller(name: str, config: Optional[CfgNode] = None) -> Callable[[Type], Type]:
    """Class decorator: register ``cls`` as ``distiller_dict[name]`` and, when given, ``config`` as the
    default config node ``build_default_config()[name]`` (several methods may share a node, declared once)."""
    key = distiller_dict.key(name)

    def wrap(cls: Type) -> Type:
        distiller_dict.register(key, cls)
        cls.registry_name = key
        if config is not None:
            config_nodes.register(key, config)
        return cls

    return wrap


def declare_config_node(name: str, node: CfgNode) -> CfgNode:
    """Declare a config node that no single distiller owns (e.g. one shared by two methods)."""
    return config_nodes.register(name, node)


def get_distiller_class(name: str) -> type:
    """Look a distiller up by name (any case); an unknown name lists the valid ones."""
    return distiller_dict.get(name)
