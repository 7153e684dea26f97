"""``sweep_<pair>_<KEY>.png``: accuracy against a swept value, mean ± std over seeds, one line per method (and per
value of the other swept keys); the row's unswept columns as dashed horizontal references. The value axis is
logarithmic when the values are positive and span more than a factor of 10."""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from ..matplotlib_support import pyplot, save_figure
from .paper import pair_name
from .result_tables import Row, Table
from .sweep import column_label, numeric, split_column

#: a value axis spanning more than this factor is logarithmic
LOG_SPAN = 10.0


def sweep_lines(row: Row, key: str) -> Dict[str, List[Tuple[str, float, float]]]:
    """Line label -> ``(value, mean, std)`` of the row's columns that sweep ``key``, in column order."""
    lines: Dict[str, List[Tuple[str, float, float]]] = {}
    for column, cell in row.cells.items():
        base, point = split_column(column)
        if key not in point or cell.mean is None:
            continue
        label = column_label(base, {k: v for k, v in point.items() if k != key})
        lines.setdefault(label, []).append((point[key], cell.mean, cell.std or 0.0))
    return lines


def log_axis(values: Sequence[str]) -> bool:
    """True when every value is a positive number and the largest is more than :data:`LOG_SPAN` x the smallest."""
    numbers = [numeric(v) for v in values]
    if not numbers or any(n is None or n <= 0 for n in numbers):
        return False
    return max(numbers) > LOG_SPAN * min(numbers)


def _draw(ax, lines: Dict[str, List[Tuple[str, float, float]]], references: Dict[str, float]) -> List[str]:
    """The lines (numbers at their value, words at their place) and the references; returns the values drawn."""
    values = list(dict.fromkeys(v for points in lines.values() for v, _, _ in points))
    numbers = all(numeric(v) is not None for v in values)
    position = {v: (numeric(v) if numbers else i) for i, v in enumerate(values)}
    for label, points in lines.items():
        points = sorted(points, key=lambda p: position[p[0]])
        xs, means, stds = [position[v] for v, _, _ in points], [m for _, m, _ in points], [s for _, _, s in points]
        line, = ax.plot(xs, means, marker="o", label=label)
        ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    for label, mean in references.items():
        ax.axhline(mean, linestyle="--", linewidth=1, color="grey")
        ax.annotate(label, (0.01, mean), xycoords=("axes fraction", "data"), fontsize=6, va="bottom")
    return values


def plot_sweeps(tables: Sequence[Table], out_dir: str) -> List[str]:
    """One figure per row and swept key of every table; none when nothing is swept."""
    paths = []
    for table in tables:
        for row in table.rows:
            keys = list(dict.fromkeys(k for column in row.cells for k in split_column(column)[1]))
            references = {c: cell.mean for c, cell in row.cells.items()
                          if not split_column(c)[1] and cell.mean is not None}
            for key in keys:
                paths.append(_plot_key(table, row, key, references, out_dir))
    return paths


def _plot_key(table: Table, row: Row, key: str, references: Dict[str, float], out_dir: str) -> str:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    values = _draw(ax, sweep_lines(row, key), references)
    if log_axis(values):
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks([numeric(v) for v in values] if all(numeric(v) is not None for v in values) else range(len(values)))
    ax.set_xticklabels(values)
    ax.set_xlabel(key)
    ax.set_ylabel(f"test top-{table.topk} (%), {table.metric} epoch")
    ax.set_title(f"{row.teacher} → {row.student}: mean ± std over seeds", fontsize=9)
    ax.legend(fontsize=7)
    name = pair_name(row.teacher, row.student)
    return save_figure(fig, out_dir, f"sweep_{name}_{key}.png")
