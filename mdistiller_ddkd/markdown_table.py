"""The one Markdown-table formatter of the package: the benchmarks' tables and the suite's result tables
(``mdistiller_ddkd.suite.table_formats``) are all rendered by :func:`markdown_table`."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

#: separator cell per alignment letter: ``l`` left (Markdown's default), ``r`` right, ``c`` centred
_SEPARATORS = {"l": "---", "r": "---:", "c": ":---:"}


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: Optional[str] = None) -> str:
    """A GitHub-flavoured Markdown table: ``| a | b |`` lines under a ``|---|---:|`` separator.

    ``align`` holds one letter per column (``l``, ``r`` or ``c``; default all ``l``), e.g. ``"lrr"`` for a
    name column followed by two numeric ones. Cells are written with ``str()`` as they are (a ``|`` inside a
    cell is not escaped), and every row must have one cell per header.
    """
    align = align or "l" * len(headers)
    if len(align) != len(headers) or set(align) - set(_SEPARATORS):
        raise ValueError(f"align needs one of {'/'.join(_SEPARATORS)} per column ({len(headers)}), got {align!r}")
    lines = [_line(headers), "|" + "|".join(_SEPARATORS[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} columns: {list(row)}")
        lines.append(_line(row))
    return "\n".join(lines)


def _line(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"
