"""Plot plumbing shared by every figure the toolbox draws (matplotlib is an optional extra:
``pip install 'mdistiller-ddkd[plot]'``): the install hint as a one-line user error, the file-only backend,
crash-safe saving, and reading an epoch series out of a run's history."""

from __future__ import annotations

import io
import math
import os
from typing import Dict, List, Sequence, Tuple

from .errors import UserError
from .fileio import atomic_write

INSTALL_HINT = "plots need matplotlib: pip install 'mdistiller-ddkd[plot]' (or pip install matplotlib)"


class PlotUnavailableError(UserError, ImportError):
    """matplotlib is not installed; the message says how to install it."""


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or ``PlotUnavailableError`` with the install hint."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailableError(INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def require_matplotlib() -> None:
    """Raise ``PlotUnavailableError`` (with the install hint) unless matplotlib can be imported."""
    pyplot()


def save_figure(fig, out_dir: str, name: str, dpi: int = 80) -> str:
    """Write ``fig`` as ``out_dir/name`` (axes labelled "epoch" get integer ticks) atomically, close it,
    return the path."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format=os.path.splitext(name)[1].lstrip(".") or "png")
    pyplot().close(fig)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def series(history: Sequence[Dict], key: str) -> Tuple[List[int], List[float]]:
    """(epochs, values) of the epochs whose record has a finite number under ``key``."""
    points = [(r["epoch"], float(r[key])) for r in history
              if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))]
    return [p[0] for p in points], [p[1] for p in points]
