"""The result tables (``result_tables.py``) as Markdown, CSV or JSON, and :func:`suite_report`: load, tabulate
and render in one call (what ``ddkd-table`` prints)."""

from __future__ import annotations

import csv
import io
import json
from typing import Optional, Sequence, Tuple

from ..errors import ConfigError
from ..markdown_table import markdown_table
from .result_tables import SEPARATION_SE, Cell, Table, build_tables, load_results


def _fmt(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def rank_text(rank: Optional[Tuple[int, int]]) -> str:
    """``rank 2``, ``rank 1–3 (tie)``; empty when not ranked."""
    if rank is None:
        return ""
    best, worst = rank
    return f"rank {best}" if best == worst else f"rank {best}–{worst} (tie)"


def cell_text(cell: Optional[Cell], with_paper: bool = True) -> str:
    """``76.12 ± 0.21 (n=3), rank 1–2 (tie) / paper 76.38 (-0.26)``; one run: ``76.12 (n=1)``; ``–`` without
    runs."""
    if cell is None:
        return ""
    if not cell.n:
        text = "–"
    elif cell.std is None:
        text = f"{cell.mean:.2f} (n={cell.n})"
    else:
        text = f"{cell.mean:.2f} ± {cell.std:.2f} (n={cell.n})"
    if cell.rank is not None:
        text += f", {rank_text(cell.rank)}"
    if with_paper and cell.paper is not None:
        text += f" / paper {cell.paper:.2f}"
        if cell.n:
            text += f" ({_fmt(cell.diff, signed=True)})"
    return text


def _title(table: Table) -> str:
    return f"{table.dataset}: top-{table.topk} accuracy (%), {table.metric} epoch, mean ± std over seeds"


#: printed under every table: which accuracy of a run its cells hold
METRIC_LEGEND = {
    "best": "best epoch: each run's highest test accuracy over all its epochs (mdistiller's convention, the default; "
            "`--metric last` takes the last epoch's, `--metric both` shows both).",
    "last": "last epoch: each run's test accuracy after its final epoch (`--metric best` takes the highest over all "
            "epochs, mdistiller's convention).",
}
#: printed under a table with ranks
RANK_LEGEND = (f"rank: place by mean among the row's Student and method columns (the Teacher is not ranked); "
               f"a range such as 1–3 is a tie: two means are ordered only when they differ by more than "
               f"{SEPARATION_SE:g} × the larger standard error (std/√n). A cell with one run has no std and no "
               f"rank.")


def to_markdown(table: Table, with_paper: bool = True) -> str:
    """The table under its bold title: one row per pair, one column per Teacher/Student/method; the legend of
    the ranks under it when a cell is ranked."""
    rows = [[f"{row.teacher} → {row.student}" if row.teacher else row.student,
             *(cell_text(row.cells.get(c), with_paper) for c in table.columns)] for row in table.rows]
    text = f"**{_title(table)}**\n\n" + markdown_table(["Teacher → Student", *table.columns], rows)
    text += f"\n\n{METRIC_LEGEND[table.metric]}"
    if any(cell.rank is not None for row in table.rows for cell in row.cells.values()):
        text += f"\n\n{RANK_LEGEND}"
    return text


def to_csv(table: Table) -> str:
    """Wide CSV: one line per pair; per column ``<col>_mean, _std, _n, _paper, _diff, _rank`` (std empty for
    one run; rank ``2`` or ``1-3``, empty when not ranked)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["dataset", "metric", "topk", "pair", "teacher", "student"]
    for column in table.columns:
        header += [f"{column}_{s}" for s in ("mean", "std", "n", "paper", "diff", "rank")]
    writer.writerow(header)
    for row in table.rows:
        line = [table.dataset, table.metric, table.topk, row.pair, row.teacher, row.student]
        for column in table.columns:
            cell = row.cells.get(column)
            if cell is None:
                line += ["", "", 0, "", "", ""]
            else:
                rank = "" if cell.rank is None else "-".join(str(r) for r in sorted(set(cell.rank)))
                line += [_csv_num(cell.mean), _csv_num(cell.std), cell.n, _csv_num(cell.paper), _csv_num(cell.diff),
                         rank]
        writer.writerow(line)
    return out.getvalue()


def _csv_num(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"


def to_json(tables: Sequence[Table]) -> str:
    return json.dumps([t.as_dict() for t in tables], indent=1)


def render(tables: Sequence[Table], fmt: str = "markdown", with_paper: bool = True) -> str:
    """All tables in one format: ``markdown``, ``csv`` or ``json``."""
    if fmt == "json":
        return to_json(tables)
    if fmt == "csv":
        return "".join(to_csv(t) for t in tables)
    if fmt == "markdown":
        return "\n\n".join(to_markdown(t, with_paper) for t in tables)
    raise ConfigError(f"format must be markdown, csv or json, got {fmt!r}")


def suite_report(roots: Sequence[str], metric: str = "best", topk: int = 1, fmt: str = "markdown",
                 pairs: Optional[Sequence[Tuple[str, str]]] = None, dataset: Optional[str] = None,
                 include_unfinished: bool = False, with_paper: bool = True,
                 methods: Optional[Sequence[str]] = None) -> str:
    """Load, tabulate and render in one call (what ``ddkd-table`` prints)."""
    results = load_results(roots, include_unfinished)
    if not results and not pairs:
        return f"no {'' if include_unfinished else 'finished '}runs (results.json) under {', '.join(roots)}"
    return render(build_tables(results, metric, topk, pairs, dataset, with_paper, methods), fmt, with_paper)
