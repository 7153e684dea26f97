"""PNG plots of runs and suites (matplotlib is an optional extra: ``pip install mdistiller-ddkd[plot]``).

Run plots read a run's ``results.json`` history (the ``diag_*`` columns of ``LOG.DIAGNOSTICS``); suite
plots read every run a suite report sees. Each function returns the paths it wrote.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

INSTALL_HINT = "plots need matplotlib: pip install 'mdistiller-ddkd[plot]' (or pip install matplotlib)"


class PlotUnavailableError(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def require_matplotlib() -> None:
    """Raise PlotUnavailableError (with the install hint) unless matplotlib can be imported."""
    _pyplot()


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or PlotUnavailableError with the install hint."""
    try:
        import matplotlib
    except ImportError:
        raise PlotUnavailableError(INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: str, name: str) -> str:
    """Write ``fig`` as ``out_dir/name`` (epochs on integer ticks) and close it."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        if ax.get_xlabel() == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _series(history: Sequence[Dict], key: str) -> Tuple[List[int], List[float]]:
    """(epochs, values) of the epochs whose record has a finite number under ``key``."""
    points = [(r["epoch"], float(r[key])) for r in history
              if isinstance(r.get(key), (int, float)) and math.isfinite(float(r[key]))]
    return [p[0] for p in points], [p[1] for p in points]


# ------------------------------------------------------------------------------------------------ one run
#: (panel title, [(column, label)]) of the gap plot
GAP_PANELS = (
    ("feature MSE to teacher latent", [("diag_feat_mse_raw", "raw"), ("diag_feat_mse_denoised", "denoised")]),
    ("feature linear CKA", [("diag_feat_cka_raw", "raw"), ("diag_feat_cka_denoised", "denoised"),
                            ("diag_ae_cka", "AE reconstruction")]),
    ("KL(teacher ‖ logits) at the method's T", [("diag_logit_kl_student", "student"), ("diag_logit_kl_raw", "raw"),
                                               ("diag_logit_kl_denoised", "denoised")]),
    ("top-1 agreement with teacher (%)", [("diag_logit_agree_student", "student"), ("diag_logit_agree_raw", "raw"),
                                          ("diag_logit_agree_denoised", "denoised")]),
)


def plot_gap(history: Sequence[Dict], out_dir: str, title: str = "") -> List[str]:
    """``gap.png``: each branch's gap raw vs denoised over epochs (empty when the run has no gap columns)."""
    panels = [(t, lines) for t, lines in GAP_PANELS if any(_series(history, k)[0] for k, _ in lines)]
    if not panels:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], panels):
        for key, label in lines:
            x, y = _series(history, key)
            if x:
                ax.plot(x, y, marker=".", label=label)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return [_save(fig, out_dir, "gap.png")]


def plot_gamma(history: Sequence[Dict], out_dir: str, title: str = "") -> List[str]:
    """``gamma.png``: the γ histogram of each branch over epochs (one column per epoch, share of samples)."""
    branches = [b for b in ("feat", "logit") if any(f"diag_gamma_{b}_hist" in r for r in history)]
    if not branches:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(branches), figsize=(4.2 * len(branches), 3.0), squeeze=False)
    for ax, branch in zip(axes[0], branches):
        rows = [(r["epoch"], r[f"diag_gamma_{branch}_hist"]) for r in history if f"diag_gamma_{branch}_hist" in r]
        grid = [[c / max(sum(h), 1) for c in h] for _, h in rows]
        columns = list(map(list, zip(*grid)))  # bins × epochs
        first, last = rows[0][0], rows[-1][0]
        image = ax.imshow(columns, origin="lower", aspect="auto", extent=(first - 0.5, last + 0.5, 0.0, 1.0),
                          cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_title(f"γ ({branch} branch)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("γ")
        fig.colorbar(image, ax=ax, fraction=0.05, label="share of probe samples")
    fig.suptitle(title, fontsize=10)
    return [_save(fig, out_dir, "gamma.png")]


def _grad_terms(history: Sequence[Dict], prefix: str) -> List[str]:
    """The columns under ``prefix`` (``diag_grad_`` excludes the ``logits_`` and ``cos_ce_`` families)."""
    others = tuple(f"diag_grad_{family}_" for family in ("logits", "cos_ce") if f"diag_grad_{family}_" != prefix)
    names = []
    for record in history:
        for key in record:
            if key.startswith(prefix) and not key.startswith(others) and key not in names:
                names.append(key)
    return names


#: (column prefix, panel title, log scale) of the gradient plot
GRADIENT_PANELS = (
    ("diag_grad_", "‖∂term/∂θ_student‖", True),
    ("diag_grad_logits_", "‖∂term/∂logits_student‖", True),
    ("diag_grad_cos_ce_", "cosine with the CE gradient", False),
)


def plot_gradients(history: Sequence[Dict], out_dir: str, title: str = "") -> List[str]:
    """``gradients.png``: each loss term's gradient norm (student parameters, and at the logits) and its
    cosine with the cross-entropy gradient, over epochs."""
    panels = [(p, t, log, _grad_terms(history, p)) for p, t, log in GRADIENT_PANELS]
    panels = [panel for panel in panels if panel[3]]
    if not panels:
        return []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.0), squeeze=False)
    for ax, (prefix, panel_title, log, keys) in zip(axes[0], panels):
        for key in keys:
            x, y = _series(history, key)
            if x and (not log or any(v > 0 for v in y)):
                ax.plot(x, y, marker=".", label=key[len(prefix):], linestyle="--" if key.endswith("total") else "-")
        if log:
            ax.set_yscale("log")
        else:
            ax.axhline(0.0, color="grey", linewidth=0.5)
            ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("epoch")
        ax.set_title(panel_title, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return [_save(fig, out_dir, "gradients.png")]


def plot_run(run_dir: str, out_dir: str) -> List[str]:
    """Every run plot of ``run_dir/results.json`` that its columns allow, plus ``accuracy.png``."""
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    history = results.get("history", [])
    title = f"{results.get('method', '')} {results.get('teacher', '')}→{results.get('student', '')} seed {results.get('seed', '')}"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for key, label in (("test_acc", "test"), ("train_acc", "train")):
        x, y = _series(history, key)
        ax.plot(x, y, marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 (%)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    paths = [_save(fig, out_dir, "accuracy.png")]
    for plot in (plot_gap, plot_gamma, plot_gradients):
        paths += plot(history, out_dir, title)
    return paths


# ------------------------------------------------------------------------------------------------ suites
def _history(run_path: str) -> List[Dict]:
    try:
        with open(os.path.join(run_path, "results.json"), encoding="utf-8") as f:
            return json.load(f).get("history", [])
    except (OSError, ValueError):
        return []


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
    from ..suite.report import method_order

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
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for label in [g for g in ("Teacher", "Student") if g in groups] + method_order(set(groups) - {"Teacher", "Student"}):
        runs = groups[label]
        epochs, means, stds = _mean_spread([_series(_history(r.path), "test_acc") for r in runs])
        if not epochs:
            continue
        line, = ax.plot(epochs, means, label=f"{label} (n={len(runs)})", linestyle=":" if label == "Teacher" else "-")
        ax.fill_between(epochs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                        color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(f"{teacher} → {student}: mean ± std over seeds", fontsize=9)
    ax.legend(fontsize=7)
    return [_save(fig, out_dir, f"accuracy_{name}.png")]


def plot_paper_vs_ours(tables: Sequence, out_dir: str) -> List[str]:
    """``paper_vs_ours_<dataset>.png``: one group of bars per pair, ours (mean ± std) beside the paper's."""
    plt = _pyplot()
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
        paths.append(_save(fig, out_dir, f"paper_vs_ours_{table.dataset}.png"))
    return paths


def plot_suite(roots: Sequence[str], out_dir: str, metric: str = "best", include_unfinished: bool = False,
               pairs: Optional[Sequence[Tuple[str, str]]] = None) -> List[str]:
    """All suite plots for the runs under ``roots``: per-pair accuracy curves, the paper-vs-ours bar chart,
    and each run's diagnostics plots (``runs/<run>/``) for runs trained with ``LOG.DIAGNOSTICS``."""
    from ..suite.paper import pair_name
    from ..suite.report import build_tables, load_results

    require_matplotlib()  # fail with the install hint before reading anything
    results = load_results(roots, include_unfinished)
    tables = build_tables(results, metric, pairs=pairs)
    paths = []
    for table in tables:
        for row in table.rows:
            mine = [r for r in results if r.dataset == table.dataset]
            paths += plot_pair_accuracy(mine, row.teacher, row.student, out_dir, pair_name(row.teacher, row.student))
    paths += plot_paper_vs_ours(tables, out_dir)
    for r in results:
        history = _history(r.path)
        if any(k.startswith("diag_") for record in history for k in record):
            run_out = os.path.join(out_dir, "runs", os.path.basename(os.path.normpath(r.path)))
            paths += plot_run(r.path, run_out)
    return paths
