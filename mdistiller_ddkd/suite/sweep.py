"""Sweeps: a suite's ``sweep: {KEY: [v1, v2, ...]}`` (globally) and ``method_sweep: {METHOD: {KEY: [...]}}``
expand into one run per point of the grid (every combination of the keys' values). A run's folder name carries
its point readably, ``dkd-res20_res8-DKD.BETA=2.0-s0``, and the tables read it back from there: a swept run is
the column ``DKD DKD.BETA=2.0`` beside the others."""

from __future__ import annotations

import itertools
import re
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from ..engine.cfg import build_default_config, load_config
from ..errors import ConfigError

#: a swept setting: the config key (``DKD.BETA``) -> its values as the config takes them (``["1.0", "2.0"]``)
Sweep = Dict[str, List[str]]
#: one point of a grid: key -> value, in the sweep's key order
Point = Dict[str, str]

_KEY = r"[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+"
_SAFE_VALUE = re.compile(r"-?[A-Za-z0-9._+]+\Z")
_NAME_ITEM = re.compile(rf"-({_KEY})=(.*?)(?=-{_KEY}=|-s\d+\Z|\Z)")


def _value_text(value: object, default: object) -> str:
    """A YAML scalar as a config override; an integer for a float key becomes that float (yacs would refuse)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int) and isinstance(default, float):
        return str(float(value))
    return str(value)


def _default(cfg, key: str) -> object:
    node = cfg
    for part in key.split("."):
        node = node[part] if part in node else None
        if node is None:
            return None
    return node


def parse_sweep(data: object, where: str = "sweep") -> Sweep:
    """``{KEY: [values]}`` from a suite file, each value checked through the config (an unknown key or a value
    the key cannot take is a ``ConfigError`` naming it) and kept as the text its run's override and name use."""
    if data is None:
        return {}
    if not isinstance(data, Mapping) or not data:
        raise ConfigError(f"{where} must be a mapping {{KEY: [value, ...]}}, got {data!r}")
    defaults = build_default_config()
    sweep: Sweep = {}
    for key, values in data.items():
        key = str(key)
        if not re.fullmatch(_KEY, key):
            raise ConfigError(f"{where}: {key!r} is not a config key (NODE.KEY in upper case, e.g. DKD.BETA)")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: {key} needs a list of values, e.g. {key}: [1, 2], got {values!r}")
        texts = []
        for value in values:
            if isinstance(value, (list, dict)) or value is None:
                raise ConfigError(f"{where}: {key} = {value!r}: a swept value is a number, a word or a boolean")
            text = _value_text(value, _default(defaults, key))
            if not _SAFE_VALUE.match(text):
                raise ConfigError(f"{where}: {key} = {text!r}: a swept value names run folders, so it may hold only "
                                  f"letters, digits and . _ + - (a leading - for negative numbers)")
            load_config(None, [key, text])  # an unknown key or a value the key cannot take: one line, now
            texts.append(text)
        duplicates = sorted({t for t in texts if texts.count(t) > 1})
        if duplicates:
            raise ConfigError(f"{where}: {key} lists {', '.join(duplicates)} more than once")
        sweep[key] = texts
    return sweep


def grid(global_sweep: Sweep, method_sweep: Optional[Sweep] = None) -> List[Point]:
    """Every point of the sweep of one method (its own values replace the global ones of the same key); one empty
    point without a sweep."""
    merged = {**global_sweep, **(method_sweep or {})}
    keys = list(merged)
    return [dict(zip(keys, values)) for values in itertools.product(*(merged[k] for k in keys))]


def name_part(point: Point) -> str:
    """The part of a run's folder name that carries its point: ``-DKD.BETA=2.0`` (empty without a sweep)."""
    return "".join(f"-{key}={value}" for key, value in point.items())


def overrides(point: Point) -> List[str]:
    """The point as ``KEY VALUE`` overrides."""
    return [item for key, value in point.items() for item in (key, value)]


def sweep_of_run_name(name: str) -> Point:
    """The point a run's folder name carries (:func:`name_part`); empty for a run that is not swept."""
    return {match.group(1): match.group(2) for match in _NAME_ITEM.finditer(name)}


def column_label(base: str, point: Mapping[str, str]) -> str:
    """A table column: ``DKD`` or, for a swept run, ``DKD DKD.BETA=2.0`` (several keys joined by ``, ``)."""
    if not point:
        return base
    return f"{base} " + ", ".join(f"{key}={value}" for key, value in point.items())


def split_column(label: str) -> Tuple[str, Point]:
    """The inverse of :func:`column_label`: the base column and the point."""
    base, _, rest = label.partition(" ")
    point = dict(item.split("=", 1) for item in rest.split(", ")) if rest else {}
    return base, point


def numeric(value: str) -> Optional[float]:
    """A swept value as a number, None for a word."""
    try:
        return float(value)
    except ValueError:
        return None


def _value_key(value: str) -> tuple:
    number = numeric(value)
    return (0, number, "") if number is not None else (1, 0.0, value)


def order_columns(labels: Iterable[str], order_bases: Callable[[Iterable[str]], List[str]]) -> List[str]:
    """Columns grouped by base in ``order_bases``' order; within a base the unswept column first, then the points
    in increasing order of their values (numbers numerically)."""
    by_base: Dict[str, List[Tuple[str, Point]]] = {}
    for label in set(labels):
        base, point = split_column(label)
        by_base.setdefault(base, []).append((label, point))
    ordered = []
    for base in order_bases(by_base):
        ordered += [label for label, point in sorted(
            by_base[base], key=lambda item: (bool(item[1]), [(k, _value_key(v)) for k, v in item[1].items()]))]
    return ordered


def expected_columns(methods: Iterable[str], global_sweep: Sweep, method_sweeps: Mapping[str, Sweep]) -> List[str]:
    """The method columns a suite's runs fill (NONE is the Student column, not listed)."""
    return [column_label(m, point) for m in methods if m != "NONE"
            for point in grid(global_sweep, method_sweeps.get(m))]
