"""The figures: t-SNE of the student's pooled features coloured by class, and mdistiller's correlation
figure (|S − T| of the class-mean logit matrices, diagonal 0); each run's panel alone, and the runs side
by side (the correlation panels on one colour scale). Written atomically through ``matplotlib_support``."""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from ..matplotlib_support import pyplot, save_figure

PANEL_INCHES = 4.2


def _class_colours(num_classes: int) -> str:
    return "tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "nipy_spectral"


def _tsne_panel(ax, embedding: np.ndarray, labels: torch.Tensor, num_classes: int, title: str) -> None:
    size = max(3.0, min(30.0, 3000.0 / max(len(labels), 1)))
    ax.scatter(embedding[:, 0], embedding[:, 1], c=labels.numpy(), cmap=_class_colours(num_classes), s=size,
               vmin=0, vmax=max(num_classes - 1, 1), linewidths=0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _correlation_panel(ax, diff: torch.Tensor, vmax: float, title: str):
    image = ax.imshow(diff.numpy(), cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("class")
    ax.set_ylabel("class")
    return image


def _row(count: int, colorbar: bool = False):
    """A figure of ``count`` panels side by side (and, with ``colorbar``, a narrow last axis for one)."""
    ratios = [1.0] * count + ([0.05] if colorbar else [])
    fig, axes = pyplot().subplots(1, len(ratios), figsize=(PANEL_INCHES * count + colorbar * 0.8, PANEL_INCHES + 0.4),
                                  squeeze=False, gridspec_kw={"width_ratios": ratios})
    return fig, list(axes[0])


def draw_tsne(out_dir: str, labels: Sequence[str], panels: Dict[str, dict]) -> List[str]:
    """``tsne_<label>.png`` per run and ``tsne.png`` with the runs side by side; ``panels[label]`` holds
    ``embedding``, ``labels``, ``num_classes``, ``title``."""
    paths = []
    for label in labels:
        fig, (ax,) = _row(1)
        _tsne_panel(ax, **panels[label])
        paths.append(save_figure(fig, out_dir, f"tsne_{label}.png"))
    fig, axes = _row(len(labels))
    for ax, label in zip(axes, labels):
        _tsne_panel(ax, **panels[label])
    fig.suptitle("t-SNE of the student's pooled features (test set), coloured by class", fontsize=10)
    paths.append(save_figure(fig, out_dir, "tsne.png"))
    return paths


def draw_correlation(out_dir: str, labels: Sequence[str], panels: Dict[str, dict]) -> List[str]:
    """``correlation_<label>.png`` per run and ``correlation.png`` side by side on one colour scale;
    ``panels[label]`` holds ``diff`` and ``title``."""
    paths = []
    vmax = max(float(torch.nan_to_num(panels[label]["diff"]).max()) for label in labels) or 1.0
    for label in labels:
        fig, (ax, cax) = _row(1, colorbar=True)
        fig.colorbar(_correlation_panel(ax, panels[label]["diff"], vmax, panels[label]["title"]), cax=cax)
        paths.append(save_figure(fig, out_dir, f"correlation_{label}.png"))
    fig, axes = _row(len(labels), colorbar=True)
    for ax, label in zip(axes, labels):
        image = _correlation_panel(ax, panels[label]["diff"], vmax, panels[label]["title"])
    fig.colorbar(image, cax=axes[-1])
    fig.suptitle("|student − teacher| of the class-mean logit matrices (test set), diagonal 0", fontsize=10)
    paths.append(save_figure(fig, out_dir, "correlation.png"))
    return paths
