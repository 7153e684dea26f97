"""Update rules (``SOLVER.TRAINER``). This module is the composition root of the update-rule registry:
the built-in rules are the modules imported below; a plugin registers its own with
``register_update_rule``."""

from . import dot, sgd  # noqa: F401  (the built-in rules: SOLVER.TRAINER base / crd, dot)
from .base import UPDATE_RULES, UpdateRule, get_update_rule, register_update_rule, registered_update_rules

__all__ = ["UPDATE_RULES", "UpdateRule", "get_update_rule", "register_update_rule", "registered_update_rules"]
