"""The paper's reported numbers (a copy of ``paper_tables.json`` shipped in ``mdistiller_ddkd/data``) and
the names that connect them to configs: pair folder names and registry method names."""

from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

from ..pairs import PAPER_PAIRS

_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "paper_tables.json")

#: (teacher, student) -> the pair's config name (mdistiller's file names)
PAIR_NAMES: Dict[Tuple[str, str], str] = {(p.teacher, p.student): p.name for p in PAPER_PAIRS}

#: the paper's tables: suite name -> (key in paper_tables.json, dataset)
PAPER_TABLES: Dict[str, Tuple[str, str]] = {
    "table1": ("table1_imagenet", "imagenet"),
    "table2": ("table2_cifar100_same_family", "cifar100"),
    "table3": ("table3_cifar100_cross_family", "cifar100"),
}

#: column names of the paper that are not methods
MODEL_COLUMNS = ("Teacher", "Student")


def method_key(column: str) -> str:
    """The registry name of a paper column (``FitNet`` -> ``FITNET``); Teacher/Student unchanged."""
    return column if column in MODEL_COLUMNS else column.upper()


@lru_cache(maxsize=1)
def load_paper_tables(path: str = _DATA) -> dict:
    """The shipped copy of the paper's tables."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def pair_name(teacher: str, student: str) -> str:
    """The config name of a pair; unknown pairs get ``<teacher>_<student>``, a ``/`` (``timm/<name>``) as ``-``
    so that the name is one folder."""
    return PAIR_NAMES.get((teacher, student), f"{teacher}_{student}".replace("/", "-"))


def table_rows(table: str) -> List[dict]:
    """The rows of one paper table (``table1`` ... ``table3``): dicts with teacher, student, top1 (and top5)."""
    key, _ = PAPER_TABLES[table]
    return load_paper_tables()[key]


def table_methods(table: str) -> List[str]:
    """The methods of a paper table in the paper's column order (registry names; NONE for Student)."""
    columns: List[str] = []
    for row in table_rows(table):
        for column in row["top1"]:
            if column not in MODEL_COLUMNS and method_key(column) not in columns:
                columns.append(method_key(column))
    return ["NONE"] + columns


def paper_value(dataset: str, teacher: str, student: str, column: str, topk: int = 1) -> Optional[float]:
    """The paper's number for a pair and a column (``Teacher``, ``Student`` or a registry method name)."""
    for table, (_, table_dataset) in PAPER_TABLES.items():
        if table_dataset != dataset:
            continue
        for row in table_rows(table):
            if row["teacher"] == teacher and row["student"] == student:
                values = row.get(f"top{topk}", {})
                for name, value in values.items():
                    if method_key(name) == column:
                        return float(value)
    return None


def paper_pairs(dataset: str) -> List[Tuple[str, str]]:
    """(teacher, student) of every row of the paper's tables on ``dataset``, in the paper's order."""
    pairs = []
    for table, (_, table_dataset) in PAPER_TABLES.items():
        if table_dataset == dataset:
            pairs += [(row["teacher"], row["student"]) for row in table_rows(table)]
    return pairs
