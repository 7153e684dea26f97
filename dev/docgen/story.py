"""Whether two result tables of the same runs (e.g. on two machines) tell the same story, by the table's own
ranking rule (:func:`mdistiller_ddkd.suite.result_tables.separated`): the docs' demo-story block and its test."""

from __future__ import annotations

from typing import Iterator, List, Tuple

from mdistiller_ddkd.suite.result_tables import UNRANKED_COLUMNS, Cell, Table, separated

CellPair = Tuple[Cell, Cell]


def story_conflicts(a: Table, b: Table, names: Tuple[str, str] = ("first", "second")) -> List[str]:
    """Where two tables of the same runs tell contradicting stories: a pair of ranked cells that each table
    orders (:func:`separated`), one way round in one and the other way in the other; one line each, empty when
    none. A pair one table orders and the other shows as a tie is no contradiction — the tie claims no order —
    whichever way its means lie."""
    conflicts = []
    for pair, x, y, (ax, ay), (bx, by) in _shared_pairs(a, b):
        if separated(ax, ay) and separated(bx, by) and (ax.mean - ay.mean) * (bx.mean - by.mean) < 0:
            conflicts.append(f"{pair}: {names[0]} orders {x} {ax.mean:.2f} vs {y} {ay.mean:.2f}, "
                             f"{names[1]} {x} {bx.mean:.2f} vs {y} {by.mean:.2f}")
    return conflicts


def _shared_pairs(a: Table, b: Table) -> Iterator[Tuple[str, str, str, CellPair, CellPair]]:
    """``(row pair, column x, column y, (cell x, cell y) in a, (cell x, cell y) in b)`` for every two ranked
    columns that both tables fill in the same row, each with runs."""
    rows_b = {row.pair: row for row in b.rows}
    for row_a in a.rows:
        row_b = rows_b.get(row_a.pair)
        if row_b is None:
            continue
        columns = [c for c in a.columns if c not in UNRANKED_COLUMNS and c in row_a.cells and c in row_b.cells]
        for i, x in enumerate(columns):
            for y in columns[i + 1:]:
                cells_a, cells_b = (row_a.cells[x], row_a.cells[y]), (row_b.cells[x], row_b.cells[y])
                if all(cell.n for cell in (*cells_a, *cells_b)):
                    yield row_a.pair, x, y, cells_a, cells_b
