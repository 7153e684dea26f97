"""PNG plots of a suite: test accuracy per epoch of every method of a pair (mean ± std over seeds), ours
vs the paper's tables, accuracy against each swept value (``suite.sweep_figures``), and each diagnosed run's plots.
matplotlib is the ``[plot]`` extra."""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

from ..diagnostics.run_figures import plot_run
from ..matplotlib_support import pyplot, require_matplotlib, save_figure, series
from ..results_file import read_results
from .paper import pair_name
from .result_tables import build_tables, load_results, method_order
from .sweep_figures import plot_sweeps


def _history(run_path: str) -> List[Dict]:
    return (read_results(run_path) or {}).get("history", [])


def _mean_spread(curves: List[Tuple[List[int], List[float]]]) -> Tuple[List[int], List[float], List[float]]:
    """Per-epoch mean and sample std over the curves that reach that epoch (std 0 for one curve)."""
    by_epoch: Dict[int, List[float]] = {}
    for x, y in curves:
        for e, v in zip(x, y):
            by_epoch.setdefault(e, []).append(v)
    epochs = sorted(by_epoch)
    means = [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs]
    stds = [math.sqrt(sum((v - m) ** 2 for v in by_epoch[e]) / (len(by_epoch[e]) - 1)) if len(by_epoch[e]) > 1
            else 0.0 for e, m in zip(epochs, means)]
    return epochs, means, stds


def plot_pair_accuracy(results: Sequence, teacher: str, student: str, out_dir: str, name: str) -> List[str]:
    """``accuracy_<name>.png``: test top-1 per epoch of every method of one pair, mean ± std over seeds
    (the student and teacher trained alone from the NONE runs)."""
    groups: Dict[str, List] = {}
    for r in results:
        if r.method == "NONE":
            label = "Student" if r.student == student else "Teacher" if r.student == teacher else None
        else:
            label = r.method if (r.teacher, r.student) == (teacher, student) else None
        if label:
            groups.setdefault(label, []).append(r)
    if not groups:
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    labels = [g for g in ("Teacher", "Student") if g in groups] + method_order(set(groups) - {"Teacher", "Student"})
    for label in labels:
        runs = groups[label]
        epochs, means, stds = _mean_spread([series(_history(r.path), "test_acc") for r in runs])
        if not epochs:
            continue
        line, = ax.plot(epochs, means, label=f"{label} (n={len(runs)})", linestyle=":" if label == "Teacher" else "-")
        ax.fill_between(epochs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"{teacher} → {student}: mean ± std over seeds", fontsize=9)
    ax.legend(fontsize=7)
    return [save_figure(fig, out_dir, f"accuracy_{name}.png")]


def plot_paper_vs_ours(tables: Sequence, out_dir: str) -> List[str]:
    """``paper_vs_ours_<dataset>.png``: one group of bars per pair, ours (mean ± std) beside the paper's."""
    plt = pyplot()
    paths = []
    for table in tables:
        if not table.rows:
            continue
        columns = [c for c in table.columns if any(c in row.cells for row in table.rows)]
        width = 0.8 / max(len(columns), 1)
        fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.45 * len(columns) * len(table.rows)), 3.4))
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for j, column in enumerate(columns):
            xs = [i - 0.4 + width * (j + 0.5) for i in range(len(table.rows))]
            cells = [row.cells.get(column) for row in table.rows]
            ours = [c.mean if c is not None and c.mean is not None else float("nan") for c in cells]
            errs = [c.std if c is not None and c.std is not None else 0.0 for c in cells]
            paper = [c.paper if c is not None and c.paper is not None else float("nan") for c in cells]
            colour = colours[j % len(colours)]
            ax.bar(xs, ours, width * 0.9, yerr=errs, color=colour, label=column, capsize=2)
            if any(not math.isnan(p) for p in paper):
                ax.scatter(xs, paper, marker="_", s=160, color="black", zorder=3,
                           label="paper" if j == 0 else None)
        ax.set_xticks(range(len(table.rows)))
        ax.set_xticklabels([f"{row.teacher}\n→ {row.student}" for row in table.rows], fontsize=7)
        ax.set_ylabel(f"top-{table.topk} (%)")
        ax.set_title(f"{table.dataset}: ours (bars, mean ± std) vs paper (black ticks)", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        low = min([c.mean for row in table.rows for c in row.cells.values() if c.mean is not None] or [0.0])
        ax.set_ylim(max(0.0, low - 10.0), None)
        paths.append(save_figure(fig, out_dir, f"paper_vs_ours_{table.dataset}.png"))
    return paths


def plot_suite(roots: Sequence[str], out_dir: str, metric: str = "best", include_unfinished: bool = False,
               pairs: Optional[Sequence[Tuple[str, str]]] = None) -> List[str]:
    """All suite plots for the runs under ``roots``: per-pair accuracy curves, the paper-vs-ours bar chart,
    and each run's diagnostics plots (``runs/<run>/``) for runs trained with ``LOG.DIAGNOSTICS``."""
    require_matplotlib()  # fail with the install hint before reading anything
    results = load_results(roots, include_unfinished)
    tables = build_tables(results, metric, pairs=pairs)
    paths = []
    for table in tables:
        for row in table.rows:
            mine = [r for r in results if r.dataset == table.dataset]
            paths += plot_pair_accuracy(mine, row.teacher, row.student, out_dir, pair_name(row.teacher, row.student))
    paths += plot_paper_vs_ours(tables, out_dir)
    paths += plot_sweeps(tables, out_dir)
    for r in results:
        history = _history(r.path)
        if any(k.startswith("diag_") for record in history for k in record):
            run_out = os.path.join(out_dir, "runs", os.path.basename(os.path.normpath(r.path)))
            paths += plot_run(r.path, run_out)
    return paths
