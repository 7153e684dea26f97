"""Result tables in the paper's layout from run folders (``results.json``); ``table_formats.py`` renders them.

Rows are teacher/student pairs, columns Teacher, Student and the methods present. A run of method NONE
trains one model alone: it fills the Student column of every row whose student it is and the Teacher
column of every row whose teacher it is. Each cell is the mean ± sample standard deviation (n-1) over the
seeds found, with their number (one run: the value alone, no std), the paper's value (the shipped
``paper_tables.json``) and the difference mean - paper. Only finished runs count unless asked otherwise.

Ranks: within a row, the student's columns (Student and the methods, not the Teacher) with at least two
runs are ranked by mean, but two of them are ordered only when their means differ by more than twice the
larger standard error (SE = std/√n, :func:`separated`); otherwise they tie, and a cell's rank is the range
of places it could take (``rank 1–3``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import ConfigError, MissingInputError
from ..results_file import RESULTS, read_results
from .paper import pair_name, paper_pairs, paper_value
from .sweep import column_label, order_columns, sweep_of_run_name

METRICS = ("best", "last")
#: method columns in the paper's order; others follow alphabetically
PAPER_METHOD_ORDER = ("FITNET", "VID", "RKD", "PKT", "CRD", "KD", "DIST", "DKD", "DIFFKD", "DDKD")


@dataclass
class RunResult:
    path: str
    dataset: str
    method: str
    teacher: str
    student: str
    seed: int
    finished: bool
    values: Dict[str, Optional[float]]  #: best_acc, best_acc_top5, last_acc, last_acc_top5
    #: the swept config values of a sweep run, from its folder name (``suite.sweep``); empty otherwise
    sweep: Dict[str, str] = field(default_factory=dict)

    def column(self, base: str) -> str:
        """The table column of this run: ``base`` (its method, Student or Teacher) and its swept values."""
        return column_label(base, self.sweep)


#: columns that are not ranked: the teacher is the reference, not a way of training the student
UNRANKED_COLUMNS = ("Teacher",)
#: two means are ordered when they differ by more than this many times the larger standard error
SEPARATION_SE = 2.0


@dataclass
class Cell:
    values: List[float]
    paper: Optional[float] = None
    #: (best, worst) place among the row's ranked cells (:func:`rank_ranges`); None when not ranked
    rank: Optional[Tuple[int, int]] = None
    #: the seed of each value (same order), for comparisons paired by seed (``suite.paired``)
    seeds: List[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> Optional[float]:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def std(self) -> Optional[float]:
        """Sample standard deviation (n-1); None below two values (one run says nothing about the spread)."""
        if len(self.values) < 2:
            return None
        m = self.mean
        return math.sqrt(sum((v - m) ** 2 for v in self.values) / (len(self.values) - 1))

    @property
    def se(self) -> Optional[float]:
        """Standard error of the mean, std/√n; None below two values."""
        std = self.std
        return None if std is None else std / math.sqrt(self.n)

    @property
    def diff(self) -> Optional[float]:
        return None if self.mean is None or self.paper is None else self.mean - self.paper

    def as_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "se": self.se, "n": self.n, "values": self.values,
                "paper": self.paper, "diff": self.diff, "rank": list(self.rank) if self.rank else None,
                "seeds": self.seeds}


def separated(a: Cell, b: Cell) -> bool:
    """True when both cells have at least two runs and their means differ by more than
    :data:`SEPARATION_SE` times the larger standard error: only then does the table order them."""
    if a.se is None or b.se is None:
        return False
    return abs(a.mean - b.mean) > SEPARATION_SE * max(a.se, b.se)


def rank_ranges(cells: Dict[str, Cell]) -> Dict[str, Tuple[int, int]]:
    """``{column: (best, worst)}`` for the cells with at least two runs: best = 1 + the cells separated from
    it and above it, worst = the number of ranked cells - the cells separated from it and below it."""
    ranked = {c: cell for c, cell in cells.items() if cell.se is not None}
    out = {}
    for column, cell in ranked.items():
        others = [o for c, o in ranked.items() if c != column and separated(cell, o)]
        above = sum(1 for o in others if o.mean > cell.mean)
        below = sum(1 for o in others if o.mean < cell.mean)
        out[column] = (1 + above, len(ranked) - below)
    return out


@dataclass
class Row:
    teacher: str
    student: str
    cells: Dict[str, Cell] = field(default_factory=dict)

    @property
    def pair(self) -> str:
        return pair_name(self.teacher, self.student)


@dataclass
class Table:
    dataset: str
    metric: str
    topk: int
    columns: List[str]
    rows: List[Row]

    def as_dict(self) -> dict:
        return {"dataset": self.dataset, "metric": self.metric, "topk": self.topk, "columns": self.columns,
                "rows": [{"pair": r.pair, "teacher": r.teacher, "student": r.student,
                          "cells": {c: r.cells[c].as_dict() for c in self.columns if c in r.cells}}
                         for r in self.rows]}


def load_results(roots: Iterable[str], include_unfinished: bool = False) -> List[RunResult]:
    """Every ``results.json`` under the given folders (searched recursively)."""
    found: List[RunResult] = []
    seen = set()
    for root in roots:
        if not os.path.exists(root):
            raise MissingInputError(f"no such folder: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            if RESULTS not in filenames:
                continue
            path = os.path.realpath(os.path.join(dirpath, RESULTS))
            if path in seen:
                continue
            seen.add(path)
            data = read_results(dirpath)
            if data is None:
                continue  # being rewritten or damaged: not a result
            if not data.get("finished") and not include_unfinished:
                continue
            found.append(RunResult(
                path=dirpath, dataset=str(data.get("dataset", "")), method=str(data.get("method", "")).upper(),
                teacher=str(data.get("teacher", "")), student=str(data.get("student", "")),
                seed=int(data.get("seed", 0)), finished=bool(data.get("finished")),
                values={k: _number(data.get(k)) for k in ("best_acc", "best_acc_top5", "last_acc", "last_acc_top5")},
                sweep=sweep_of_run_name(os.path.basename(dirpath)),
            ))
    return found


def _number(value) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and value >= 0 else None


def _value_key(metric: str, topk: int) -> str:
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    if topk not in (1, 5):
        raise ConfigError(f"topk must be 1 or 5, got {topk}")
    return f"{metric}_acc" + ("_top5" if topk == 5 else "")


def method_order(methods: Iterable[str]) -> List[str]:
    """Method names in the paper's column order, the others after them alphabetically."""
    methods = set(methods)
    ordered = [m for m in PAPER_METHOD_ORDER if m in methods]
    return ordered + sorted(methods - set(ordered))


def build_tables(results: Sequence[RunResult], metric: str = "best", topk: int = 1,
                 pairs: Optional[Sequence[Tuple[str, str]]] = None, dataset: Optional[str] = None,
                 with_paper: bool = True, methods: Optional[Sequence[str]] = None) -> List[Table]:
    """One table per dataset (or only ``dataset``); rows are ``pairs`` when given, else the pairs found
    (paper order first); method columns are those found plus ``methods``. Cells without a run show the
    paper's value alone (when it has one)."""
    key = _value_key(metric, topk)
    datasets = [dataset] if dataset else sorted({r.dataset for r in results})
    tables = []
    for ds in datasets:
        mine = [r for r in results if r.dataset == ds]
        row_pairs = list(pairs) if pairs else _pairs_found(mine, ds)
        columns = order_columns(({r.column(r.method) for r in mine} | set(methods or ())) - {"NONE"}, method_order)
        extra = order_columns({r.column("Student") for r in mine if r.method == "NONE" and r.sweep}, sorted)
        rows = []
        for teacher, student in row_pairs:
            row = Row(teacher, student)
            buckets: Dict[str, List[RunResult]] = {}
            for r in mine:
                if r.values.get(key) is None:
                    continue
                if r.method == "NONE":
                    if r.student == teacher and not r.sweep:  # a sweep varies the trained model, not the reference
                        buckets.setdefault("Teacher", []).append(r)
                    if r.student == student:
                        buckets.setdefault(r.column("Student"), []).append(r)
                elif r.teacher == teacher and r.student == student:
                    buckets.setdefault(r.column(r.method), []).append(r)
            for column in ["Teacher", "Student", *extra, *columns]:
                paper = paper_value(ds, teacher, student, column, topk) if with_paper else None
                if column in buckets or paper is not None:
                    runs = buckets.get(column, [])
                    row.cells[column] = Cell([r.values[key] for r in runs], paper, seeds=[r.seed for r in runs])
            ranks = rank_ranges({c: cell for c, cell in row.cells.items() if c not in UNRANKED_COLUMNS})
            for column, rank in ranks.items():
                row.cells[column].rank = rank
            rows.append(row)
        tables.append(Table(ds, metric, topk, ["Teacher", "Student", *extra, *columns], rows))
    return tables


def _pairs_found(results: Sequence[RunResult], dataset: str) -> List[Tuple[str, str]]:
    found = []
    for r in results:
        if r.method != "NONE" and (r.teacher, r.student) not in found:
            found.append((r.teacher, r.student))
    if not found:  # only models trained alone: one row per model, as a student
        found = [("", r.student) for r in results if r.method == "NONE"]
        found = list(dict.fromkeys(found))
    order = {p: i for i, p in enumerate(paper_pairs(dataset))}
    return sorted(found, key=lambda p: (order.get(p, len(order)), found.index(p)))
