"""What ``ddkd-table --metric both`` and ``--vs METHOD`` print: best- and last-epoch cells side by side, and
each row's paired comparisons against one column (``suite.paired``), in Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..markdown_table import markdown_table
from .paired import CONFIDENCE, PairedComparison, compare_row
from .result_tables import METRICS, UNRANKED_COLUMNS, Cell, Table, build_tables, load_results
from .table_formats import cell_text, render
from .table_formats import to_markdown as one_metric_markdown

#: the metrics ``--metric`` accepts: one of report.METRICS, or both side by side
METRIC_CHOICES = (*METRICS, "both")
BOTH_LEGEND = ("best: each run's highest test accuracy over all its epochs (mdistiller's convention, the default "
               "metric); last: its accuracy after the final epoch. Ranks and the paper's difference are the best "
               "epoch's.")
PAIRED_LEGEND = (f"difference: the mean over the seeds both columns ran of (column − reference), seed by seed; "
                 f"{CONFIDENCE:.0%} CI: Student's t with n − 1 degrees of freedom (one seed: the difference alone); "
                 f"better / worse: the interval excludes 0, else no clear difference.")


def resolve_vs(tables: Sequence[Table], vs: str) -> str:
    """The column ``--vs`` names: a column as the table heads it (case-insensitive); NONE means Student."""
    columns = list(dict.fromkeys(c for t in tables for c in t.columns if c not in UNRANKED_COLUMNS))
    wanted = "STUDENT" if vs.upper() == "NONE" else vs.upper()
    for column in columns:
        if column.upper() == wanted:
            return column
    raise ConfigError(f"--vs {vs}: no such column; the tables have {', '.join(columns) or 'none'} "
                      f"(quote a swept column: --vs 'DKD DKD.BETA=2.0')")


def paired_rows(table: Table, vs: str) -> List[Tuple[str, List[PairedComparison]]]:
    """(pair, comparisons) of every row of ``table`` against column ``vs``."""
    return [(row.pair, compare_row(row.cells, vs, UNRANKED_COLUMNS)) for row in table.rows]


def _signed(value: Optional[float]) -> str:
    return "" if value is None else f"{value:+.2f}"


def _seed_note(c: PairedComparison) -> str:
    """What the comparison leaves out: seeds only one side ran (`` (seed(s) 3 only in DDKD: left out)``)."""
    notes = [f"seed(s) {', '.join(map(str, seeds))} only in {name}"
             for seeds, name in ((c.only_column, c.column), (c.only_reference, c.reference)) if seeds]
    return f" ({'; '.join(notes)}{': left out' if c.n else ''})" if notes else ""


def paired_markdown(table: Table, vs: str) -> str:
    """The paired comparisons of one table as a Markdown table under its title, and their legend."""
    lines = []
    for row, comparisons in zip(table.rows, (c for _, c in paired_rows(table, vs))):
        pair = f"{row.teacher} → {row.student}" if row.teacher else row.student
        for c in comparisons:
            interval = "" if c.interval is None else f"[{_signed(c.interval[0])}, {_signed(c.interval[1])}]"
            lines.append([pair, c.column, _signed(c.mean), interval, f"{c.wins}/{c.n}" if c.n else "",
                          c.verdict + _seed_note(c)])
    title = (f"**{table.dataset}: paired differences against {vs} ({table.metric} epoch, top-{table.topk}, "
             f"percentage points)**")
    head = ["Teacher → Student", "column", f"difference vs {vs}", f"{CONFIDENCE:.0%} CI", "seeds won", "verdict"]
    return f"{title}\n\n{markdown_table(head, lines)}\n\n{PAIRED_LEGEND}"


def _both_cell(best: Optional[Cell], last: Optional[Cell], with_paper: bool) -> str:
    """``best 76.12 ± 0.21 (n=3), rank 1 · last 75.80 ± 0.30 (n=3) / paper 76.32 (-0.20)``."""
    if best is None:
        return ""
    if not best.n:
        return cell_text(best, with_paper)
    text = f"best {cell_text(best, False)} · last {cell_text(Cell(last.values if last else []), False)}"
    if with_paper and best.paper is not None:
        text += f" / paper {best.paper:.2f} ({_signed(best.diff)})"
    return text


def both_markdown(best: Table, last: Table, with_paper: bool = True) -> str:
    """One table whose cells show the best and the last epoch's mean ± std (n) side by side."""
    rows = [[f"{rb.teacher} → {rb.student}" if rb.teacher else rb.student,
             *(_both_cell(rb.cells.get(c), rl.cells.get(c), with_paper) for c in best.columns)]
            for rb, rl in zip(best.rows, last.rows)]
    title = f"**{best.dataset}: top-{best.topk} accuracy (%), best and last epoch, mean ± std over seeds**"
    return f"{title}\n\n{markdown_table(['Teacher → Student', *best.columns], rows)}\n\n{BOTH_LEGEND}"


def _num(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4f}"


def both_csv(best: Table, last: Table) -> List[List[object]]:
    """Wide CSV lines (header first): per column ``<col>_{best,last}_{mean,std,n}``, the best epoch's rank,
    the paper's value and its difference."""
    header = ["dataset", "metric", "topk", "pair", "teacher", "student"]
    for column in best.columns:
        header += [f"{column}_{m}_{s}" for m in METRICS for s in ("mean", "std", "n")]
        header += [f"{column}_best_rank", f"{column}_paper", f"{column}_diff"]
    lines: List[List[object]] = [header]
    for row_best, row_last in zip(best.rows, last.rows):
        line: List[object] = [best.dataset, "both", best.topk, row_best.pair, row_best.teacher, row_best.student]
        for column in best.columns:
            b, la = row_best.cells.get(column) or Cell([]), row_last.cells.get(column) or Cell([])
            rank = "" if b.rank is None else "-".join(str(r) for r in sorted(set(b.rank)))
            line += [_num(b.mean), _num(b.std), b.n, _num(la.mean), _num(la.std), la.n, rank, _num(b.paper),
                     _num(b.diff)]
        lines.append(line)
    return lines


def _paired_columns(lines: List[List[object]], tables: Dict[str, Table], vs: str) -> List[List[object]]:
    """The CSV lines with, per compared column and metric, ``<col>_vs_<ref>_<metric>_{diff,low,high,n,wins,
    verdict}`` appended."""
    table = next(iter(tables.values()))
    compared = [c for c in table.columns if c != vs and c not in UNRANKED_COLUMNS]
    header = list(lines[0])
    for metric in tables:
        header += [f"{c}_vs_{vs}_{metric}_{s}" for c in compared
                   for s in ("diff", "low", "high", "n", "wins", "verdict")]
    out = [header]
    for i, line in enumerate(lines[1:]):
        line = list(line)
        for t in tables.values():
            found = {c.column: c for c in compare_row(t.rows[i].cells, vs, UNRANKED_COLUMNS)}
            for column in compared:
                c = found.get(column)
                interval = c.interval if c is not None and c.interval else [None, None]
                line += ["", "", 0, 0, "", ""] if c is None else [_num(c.mean), _num(interval[0]), _num(interval[1]),
                                                                  c.n, c.wins, c.verdict]
        out.append(line)
    return out


def _csv_text(lines: List[List[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    return out.getvalue()


def _table_csv(tables: Dict[str, Table], vs: Optional[str]) -> str:
    if len(tables) == 2:
        lines = both_csv(tables["best"], tables["last"])
    else:
        lines = list(csv.reader(io.StringIO(render([next(iter(tables.values()))], "csv"))))
    return _csv_text(_paired_columns(lines, tables, vs) if vs else lines)


def _table_json(tables: Dict[str, Table], vs: Optional[str]) -> dict:
    if len(tables) == 2:
        best, last = tables["best"], tables["last"]
        data = {**best.as_dict(), "metric": "both"}
        for row, row_best, row_last in zip(data["rows"], best.rows, last.rows):
            row["cells"] = {c: {"best": row_best.cells[c].as_dict(),
                                "last": row_last.cells.get(c, Cell([])).as_dict()}
                            for c in best.columns if c in row_best.cells}
    else:
        data = next(iter(tables.values())).as_dict()
    if vs:
        data["paired"] = [{"vs": vs, "metric": metric, "rows": [{"pair": pair, "comparisons": [c.as_dict() for c in cs]}
                                                               for pair, cs in paired_rows(t, vs)]}
                          for metric, t in tables.items()]
    return data


def _table_markdown(tables: Dict[str, Table], vs: Optional[str], with_paper: bool) -> str:
    if len(tables) == 2:
        text = both_markdown(tables["best"], tables["last"], with_paper)
    else:
        text = one_metric_markdown(next(iter(tables.values())), with_paper)
    return "\n\n".join([text, *(paired_markdown(t, vs) for t in tables.values())] if vs else [text])


def comparison_report(roots: Sequence[str], metric: str = "best", topk: int = 1, fmt: str = "markdown",
                      pairs: Optional[Sequence[Tuple[str, str]]] = None, dataset: Optional[str] = None,
                      include_unfinished: bool = False, with_paper: bool = True,
                      methods: Optional[Sequence[str]] = None, vs: Optional[str] = None) -> str:
    """What ``ddkd-table`` prints: the table of one metric or of both, with the paired comparisons against ``vs``
    when given."""
    if metric not in METRIC_CHOICES:
        raise ConfigError(f"metric must be one of {', '.join(METRIC_CHOICES)}, got {metric!r}")
    results = load_results(roots, include_unfinished)
    if not results and not pairs:
        return f"no {'' if include_unfinished else 'finished '}runs (results.json) under {', '.join(roots)}"
    metrics = METRICS if metric == "both" else (metric,)
    by_metric = {m: build_tables(results, m, topk, pairs, dataset, with_paper, methods) for m in metrics}
    column = resolve_vs(by_metric[metrics[0]], vs) if vs else None
    per_table = [{m: by_metric[m][i] for m in metrics} for i in range(len(by_metric[metrics[0]]))]
    if fmt == "json":
        return json.dumps([_table_json(t, column) for t in per_table], indent=1)
    if fmt == "csv":
        return "".join(_table_csv(t, column) for t in per_table)
    if fmt == "markdown":
        return "\n\n".join(_table_markdown(t, column, with_paper) for t in per_table)
    raise ConfigError(f"format must be markdown, csv or json, got {fmt!r}")
