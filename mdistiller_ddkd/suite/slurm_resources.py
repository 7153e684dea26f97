"""Slurm's resource formats (time limits, memory sizes, GRES), what the nodes of a partition offer (``sinfo``)
and whether a run's request fits one of them: a job asking for more than any node has stays pending for ever
(Slurm's reason ``PartitionConfig``, or ``PartitionTimeLimit``), so such a request is refused before anything
is submitted, naming the option to change. Pure parsers of Slurm's text; ``slurm.py`` asks Slurm."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import List, Optional

from ..errors import ConfigError

#: ``sinfo -h -N -o`` format of ``parse_nodes``: one line per (node, partition)
SINFO_FORMAT = "%P|%N|%c|%m|%G|%l"
_MB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}


@dataclass(frozen=True)
class Node:
    """One node of a partition: CPUs, memory (MB), GPUs, and the partition's time limit (seconds); None where
    there is no limit or sinfo does not say (then no request is refused for it)."""

    name: str
    partition: str
    cpus: Optional[int]
    mem_mb: Optional[int]
    gpus: int
    time_limit: Optional[int]


def memory_mb(text: str, what: str = "--mem-per-run") -> int:
    """Megabytes of a Slurm memory size (``16G``, ``1500M``, ``2048`` = MB, ``1T``, ``512K``); 0: a whole node."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT])?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ConfigError(f"{what} {text!r} is not a Slurm memory size (a number of MB, or with K, M, G or T: 16G)")
    return math.ceil(int(match.group(1)) * _MB_PER_UNIT[(match.group(2) or "M").upper()])  # as Slurm: 1K -> 1M


def gres_gpus(gres: str) -> int:
    """GPUs in a node's GRES: ``gpu:2``, ``gpu:a100:4(S:0-1)``, ``gpu:a100:2,gpu:v100:1``; ``(null)``: 0."""
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = item.strip().split(":")
        if parts[0] != "gpu":
            continue
        total += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return total


def time_limit_seconds(value: str) -> int:
    """Seconds of a Slurm time limit: ``minutes``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``."""
    text = str(value).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise ConfigError(f"slurm time {value!r} is not a Slurm time limit (minutes, HH:MM:SS or D-HH:MM:SS)")
    days, a, b, c = (int(g) if g is not None else None for g in match.groups())
    if days is not None:  # D-HH[:MM[:SS]]
        return days * 86400 + a * 3600 + (b or 0) * 60 + (c or 0)
    if b is None:  # minutes
        return a * 60
    if c is None:  # MM:SS
        return a * 60 + b
    return a * 3600 + b * 60 + c


def partition_time_limit(text: str) -> Optional[int]:
    """Seconds of ``sinfo``'s ``%l`` (``infinite``, ``1-00:00:00``, ``2:00:00``, ``30:00``); None: no limit, or
    one it does not state (``n/a``)."""
    try:
        return time_limit_seconds(text)
    except ConfigError:
        return None


def _number(text: str) -> Optional[int]:
    """A count as sinfo prints it (``2``; ``2+`` for a group of nodes); None for anything else (``N/A``)."""
    match = re.match(r"\s*(\d+)", text)
    return int(match.group(1)) if match else None


def parse_nodes(text: str) -> List[Node]:
    """The nodes of ``sinfo -h -N -o SINFO_FORMAT``; the default partition keeps its ``*``."""
    nodes = []
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 6:
            continue
        partition, name, cpus, mem, gres, limit = (f.strip() for f in fields)
        nodes.append(Node(name, partition, _number(cpus), _number(mem), gres_gpus(gres), partition_time_limit(limit)))
    return nodes


def nodes_of(nodes: List[Node], partition: Optional[str]) -> List[Node]:
    """The nodes a job of ``partition`` may run on (None: the default partition, marked ``*`` by sinfo)."""
    if partition is None:
        return [n for n in nodes if n.partition.endswith("*")]
    return [n for n in nodes if n.partition.rstrip("*") == partition]


def _limit(seconds: Optional[int]) -> str:
    if seconds is None:
        return "no limit"
    days, rest = divmod(seconds, 86400)
    clock = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{clock}" if days else clock


def _mb(mb: Optional[int]) -> str:
    if mb is None:
        return "? memory"
    return f"{mb}M = {mb / 1024:.1f}G" if mb >= 1024 else f"{mb}M"


def _most(nodes: List[Node], key: str) -> Optional[int]:
    """The largest value of ``key`` over ``nodes``; None when a node has no bound (or sinfo did not say)."""
    values = [getattr(n, key) for n in nodes]
    return None if None in values else max(values)


def _fits(node: Node, cpus: int, mem_mb: int, gpus: int) -> bool:
    return all(have is None or have >= need for have, need in ((node.cpus, cpus), (node.mem_mb, mem_mb),
                                                                 (node.gpus, gpus)))


def check_request(nodes: List[Node], partition: str, cpus: int, mem: str, gpus: int, time: str) -> None:
    """Refuse (``ConfigError``, one line) a per-run request that no node of the partition can satisfy, naming
    the option to change and what the largest node offers. No nodes: nothing to check against."""
    if not nodes:
        return
    mem_mb, seconds, where = memory_mb(mem), time_limit_seconds(time), f"partition {partition}"
    most_cpus, most_mem, most_gpus, longest = (_most(nodes, k) for k in ("cpus", "mem_mb", "gpus", "time_limit"))
    if most_cpus is not None and cpus > most_cpus:
        raise ConfigError(f"--cpus-per-run {cpus}: no node of {where} has that many CPUs (the largest has "
                          f"{most_cpus}); lower --cpus-per-run (or the suite file's slurm: cpus)")
    if most_mem is not None and mem_mb > most_mem:
        raise ConfigError(f"--mem-per-run {mem}: no node of {where} has that much memory (the largest has "
                          f"{_mb(most_mem)}); lower --mem-per-run (or the suite file's slurm: mem)")
    if gpus > most_gpus:
        raise ConfigError(f"--gpus-per-run {gpus}: no node of {where} has that many GPUs (the most is "
                          f"{most_gpus}); lower --gpus-per-run (or the suite file's slurm: gpus)")
    if longest is not None and seconds > longest:
        raise ConfigError(f"--time {time}: {where} allows at most {_limit(longest)}; lower --time (or the suite "
                          f"file's slurm: time) — a run continues in a new job when one reaches its limit")
    if not any(_fits(n, cpus, mem_mb, gpus) for n in nodes):
        offers = "; ".join(f"{n.name}: {'?' if n.cpus is None else n.cpus} CPUs, {_mb(n.mem_mb)}, {n.gpus} GPUs"
                           for n in nodes[:4])
        raise ConfigError(f"no node of {where} has {cpus} CPUs, {mem} and {gpus} GPUs together ({offers}"
                          f"{'; ...' if len(nodes) > 4 else ''}); lower --cpus-per-run, --mem-per-run or "
                          f"--gpus-per-run")
