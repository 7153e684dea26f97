"""PNG plots of one run's diagnostics (``LOG.DIAGNOSTICS`` columns of its results.json history) and its
accuracy curves; each function returns the paths it wrote. matplotlib is the ``[plot]`` extra."""

from __future__ import annotations

from typing import Dict, List, Sequence

from ..errors import MissingInputError
from ..matplotlib_support import pyplot, save_figure, series
from ..results_file import RESULTS, read_results

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
    panels = [(t, lines) for t, lines in GAP_PANELS if any(series(history, k)[0] for k, _ in lines)]
    if not panels:
        return []
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.0), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], panels):
        for key, label in lines:
            x, y = series(history, key)
            if x:
                ax.plot(x, y, marker=".", label=label)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return [save_figure(fig, out_dir, "gap.png")]


def plot_gamma(history: Sequence[Dict], out_dir: str, title: str = "") -> List[str]:
    """``gamma.png``: the γ histogram of each branch over epochs (one column per epoch, share of samples)."""
    branches = [b for b in ("feat", "logit") if any(f"diag_gamma_{b}_hist" in r for r in history)]
    if not branches:
        return []
    plt = pyplot()
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
    return [save_figure(fig, out_dir, "gamma.png")]


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
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.0), squeeze=False)
    for ax, (prefix, panel_title, log, keys) in zip(axes[0], panels):
        for key in keys:
            x, y = series(history, key)
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
    return [save_figure(fig, out_dir, "gradients.png")]


def plot_run(run_dir: str, out_dir: str) -> List[str]:
    """Every run plot of ``run_dir/results.json`` that its columns allow, plus ``accuracy.png``."""
    results = read_results(run_dir)
    if results is None:
        raise MissingInputError(f"{run_dir} holds no readable {RESULTS}: plot the folder of a run")
    history = results.get("history", [])
    title = (f"{results.get('method', '')} {results.get('teacher', '')}→{results.get('student', '')} "
             f"seed {results.get('seed', '')}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    for key, label in (("test_acc", "test"), ("train_acc", "train")):
        x, y = series(history, key)
        ax.plot(x, y, marker=".", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 (%)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    paths = [save_figure(fig, out_dir, "accuracy.png")]
    for plot in (plot_gap, plot_gamma, plot_gradients):
        paths += plot(history, out_dir, title)
    return paths
