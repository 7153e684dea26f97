"""Paired comparisons: a column against a reference column of the same row, seed by seed.

Suites run the same seeds (same data order, same student initialisation) for every method, so the per-seed
difference removes what the seeds share; its mean has a 95 % confidence interval from Student's t with n - 1
degrees of freedom. The verdict is *better* or *worse* when the interval excludes 0, else *no clear difference*;
one shared seed gives the difference alone (no interval, *one seed*), none gives *unpaired*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from .student_t import t_quantile

CONFIDENCE = 0.95
BETTER, WORSE, UNCLEAR, ONE_SEED, UNPAIRED = "better", "worse", "no clear difference", "one seed", "unpaired"


@dataclass(frozen=True)
class PairedComparison:
    """``column`` - ``reference`` over the seeds both have (``seeds``, increasing)."""

    column: str
    reference: str
    seeds: List[int]
    values: List[float]
    reference_values: List[float]
    #: seeds one side has and the other lacks: they are left out of the comparison, and the cell says so
    only_column: List[int]
    only_reference: List[int]

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def differences(self) -> List[float]:
        return [v - r for v, r in zip(self.values, self.reference_values)]

    @property
    def mean(self) -> Optional[float]:
        return sum(self.differences) / self.n if self.n else None

    @property
    def std(self) -> Optional[float]:
        """Sample standard deviation (n - 1) of the differences; None below two seeds."""
        if self.n < 2:
            return None
        m = self.mean
        return math.sqrt(sum((d - m) ** 2 for d in self.differences) / (self.n - 1))

    @property
    def half_width(self) -> Optional[float]:
        """t_{0.975, n-1} · std / √n; None below two seeds."""
        if self.n < 2:
            return None
        return t_quantile(0.5 + CONFIDENCE / 2, self.n - 1) * self.std / math.sqrt(self.n)

    @property
    def interval(self) -> Optional[List[float]]:
        return None if self.half_width is None else [self.mean - self.half_width, self.mean + self.half_width]

    @property
    def wins(self) -> int:
        """Seeds on which the column beats the reference."""
        return sum(1 for d in self.differences if d > 0)

    @property
    def paired(self) -> bool:
        """Both sides ran exactly the same seeds."""
        return bool(self.n) and not self.only_column and not self.only_reference

    @property
    def verdict(self) -> str:
        if not self.n:
            return UNPAIRED
        if self.n == 1:
            return ONE_SEED
        low, high = self.interval
        return BETTER if low > 0 else WORSE if high < 0 else UNCLEAR

    def as_dict(self) -> dict:
        """Every per-seed value, so that anyone can recompute, and what follows from them."""
        return {"column": self.column, "vs": self.reference, "seeds": self.seeds, "values": self.values,
                "vs_values": self.reference_values, "differences": self.differences, "n": self.n,
                "mean": self.mean, "std": self.std, "confidence": CONFIDENCE, "interval": self.interval,
                "wins": self.wins, "verdict": self.verdict, "paired": self.paired,
                "only_column": self.only_column, "only_vs": self.only_reference}


def _by_seed(values: Sequence[float], seeds: Sequence[int]) -> Dict[int, float]:
    """Seed -> value; a seed found twice (the same run in two folders) is left out: it cannot be paired."""
    twice = {s for s in seeds if list(seeds).count(s) > 1}
    return {s: v for s, v in zip(seeds, values) if s not in twice}


def compare(column: str, values: Sequence[float], seeds: Sequence[int], reference: str,
            reference_values: Sequence[float], reference_seeds: Sequence[int]) -> PairedComparison:
    """``column``'s values against ``reference``'s, paired by seed."""
    mine, theirs = _by_seed(values, seeds), _by_seed(reference_values, reference_seeds)
    shared = sorted(set(mine) & set(theirs))
    return PairedComparison(column, reference, shared, [mine[s] for s in shared], [theirs[s] for s in shared],
                            sorted(set(seeds) - set(theirs)), sorted(set(reference_seeds) - set(mine)))


def compare_row(cells: Dict[str, object], reference: str, skip: Sequence[str] = ()) -> List[PairedComparison]:
    """Every column of a row with runs (but ``reference`` and ``skip``) against ``reference``; empty when the
    reference has no runs. ``cells`` are the row's :class:`~.report.Cell`s (``values`` and ``seeds``)."""
    ref = cells.get(reference)
    if ref is None or not ref.values:
        return []
    return [compare(name, cell.values, cell.seeds, reference, ref.values, ref.seeds)
            for name, cell in cells.items() if name != reference and name not in skip and cell.values]
