"""Figures of trained runs, as mdistiller's ``tools/visualizations``: t-SNE of the student's pooled features
and the difference between the student's and the teacher's class-correlation matrices of logits, for
several runs side by side (``ddkd-visualize``; docs/usage.md). scikit-learn and matplotlib are the
optional ``[viz]`` extra."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

from ..engine.runs import STUDENT_CHECKPOINTS, open_run
from ..errors import UserError
from ..fileio import make_dirs
from .collect import RunOutputs, collect_run, run_labels
from .compute import class_mean_logits, correlation_difference, off_diagonal_stats, subsample, tsne_embedding
from .figures import draw_correlation, draw_tsne

INSTALL_HINT = "ddkd-visualize needs scikit-learn and matplotlib: pip install 'mdistiller-ddkd[viz]'"


class VisualizeUnavailableError(UserError, ImportError):
    """scikit-learn or matplotlib is missing; the message says how to install them."""


def require_viz() -> None:
    """``VisualizeUnavailableError`` (with the install hint) unless scikit-learn and matplotlib import."""
    for module in ("sklearn.manifold", "matplotlib"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise VisualizeUnavailableError(f"{INSTALL_HINT} ({module.split('.')[0]} is missing)") from None


@dataclass
class RunFigureNumbers:
    """A run's correlation difference: mean and max of |S − T| off the diagonal, and the t-SNE sample size."""

    label: str
    title: str
    mean_off_diagonal: float
    max_off_diagonal: float
    tsne_samples: int


@dataclass
class VisualizeReport:
    numbers: List[RunFigureNumbers]
    paths: List[str] = field(default_factory=list)


def visualize_runs(run_dirs: Sequence[str], out_dir: str, which: str = "best", teacher_ckpt: str = "",
                   opts: Sequence[str] = (), max_samples: int = 3000, seed: int = 0) -> VisualizeReport:
    """Collect every run's outputs first (so a bad run folder writes nothing), then draw the figures."""
    require_viz()
    for path in run_dirs:  # every folder and checkpoint is there before the first is read
        open_run(path, opts, teacher_ckpt).checkpoint(STUDENT_CHECKPOINTS[which])
    labels = run_labels(run_dirs)
    outputs: Dict[str, RunOutputs] = {label: collect_run(path, label, which, teacher_ckpt, opts)
                                      for label, path in zip(labels, run_dirs)}
    tsne, correlation, numbers = {}, {}, []
    for label, run in outputs.items():
        keep = subsample(len(run.labels), max_samples, seed)
        tsne[label] = {"embedding": tsne_embedding(run.features[keep], seed), "labels": run.labels[keep],
                       "num_classes": run.num_classes, "title": run.title}
        diff = correlation_difference(class_mean_logits(run.student_logits, run.labels, run.num_classes),
                                      class_mean_logits(run.teacher_logits, run.labels, run.num_classes))
        correlation[label] = {"diff": diff, "title": run.title}
        numbers.append(RunFigureNumbers(label, run.title.replace("\n", " "), *off_diagonal_stats(diff), len(keep)))
    make_dirs(out_dir)
    paths = draw_tsne(out_dir, labels, tsne) + draw_correlation(out_dir, labels, correlation)
    return VisualizeReport(numbers, paths)


__all__ = ["INSTALL_HINT", "RunFigureNumbers", "VisualizeReport", "VisualizeUnavailableError", "class_mean_logits",
           "correlation_difference", "off_diagonal_stats", "require_viz", "visualize_runs"]
