"""The DDKD-variant study's blocks (docs/ddkd.md#variants), from ``docs/results/ddkd_variants/study.json``
(written by ``docs/results/ddkd_variants/study.py summary``): per setting, the accuracy of each method and β
with the per-seed paired difference against DKD, and the last-epoch instruments of the DDKD runs."""

from __future__ import annotations

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from mdistiller_ddkd.markdown_table import markdown_table
from mdistiller_ddkd.suite.result_tables import Cell

from .core import read_results_file, register_block

STUDY = os.path.join("ddkd_variants", "study.json")
#: ``<setting>/<method label>[-b<beta>]-s<seed>``
RUN_NAME = re.compile(r"^(?P<setting>[^/]+)/(?P<label>[a-z0-9_]+?)(?:-b(?P<beta>[0-9.]+))?-s(?P<seed>\d+)$")
#: diagnostics key -> column title (docs/diagnostics.md defines each)
INSTRUMENTS = [
    ("diff_logit_t0_250", "logit diff. loss t<250"),
    ("diff_feat_t0_250", "feat. diff. loss t<250"),
    ("gamma_logit_mean", "γ logit mean"),
    ("gamma_logit_std", "γ logit std"),
    ("logit_kl_raw", "KL(T‖raw)"),
    ("logit_kl_denoised", "KL(T‖denoised)"),
    ("feat_mse_raw", "feat. MSE raw"),
    ("feat_mse_denoised", "feat. MSE denoised"),
]
_FIXED_ORDER = ["none", "kd", "diffkd", "dkd", "ddkd"]

Cells = Dict[Tuple[str, Optional[float]], Dict[int, dict]]


def study_runs(results_dir: str) -> Dict[str, Cells]:
    """setting -> (method label, β or None) -> seed -> run record, finished runs only."""
    out: Dict[str, Cells] = {}
    for name, record in read_results_file(os.path.join(results_dir, STUDY))["runs"].items():
        match = RUN_NAME.match(name)
        if not match or not record.get("finished"):
            continue
        beta = float(match["beta"]) if match["beta"] else None
        out.setdefault(match["setting"], {}).setdefault((match["label"], beta), {})[int(match["seed"])] = record
    return out


def _mean_std(values: Sequence[float]) -> str:
    cell = Cell(list(values))
    return f"{cell.mean:.1f}" if cell.std is None else f"{cell.mean:.1f} ± {cell.std:.1f}"


def _order(cells: Cells) -> List[Tuple[str, Optional[float]]]:
    def key(item):
        label, beta = item
        return (beta or 0.0, _FIXED_ORDER.index(label) if label in _FIXED_ORDER else len(_FIXED_ORDER), label)

    return sorted(cells, key=key)


def paired_differences(cells: Dict[int, dict], reference: Dict[int, dict]) -> List[float]:
    """Best-accuracy differences against ``reference`` on the seeds both have (same seed = same data order)."""
    return [cells[s]["best_acc"] - reference[s]["best_acc"] for s in sorted(cells) if s in reference]


def accuracy_table(cells: Cells) -> str:
    rows = []
    for label, beta in _order(cells):
        runs = cells[(label, beta)]
        values = [runs[s]["best_acc"] for s in sorted(runs)]
        dkd = cells.get(("dkd", beta)) if beta is not None and label != "dkd" else None
        diffs = paired_differences(runs, dkd) if dkd else []
        paired = f"{sum(diffs) / len(diffs):+.1f} ({', '.join(f'{d:+.1f}' for d in diffs)})" if diffs else ""
        rows.append([label, "" if beta is None else f"{beta:g}", len(values), _mean_std(values),
                     ", ".join(f"{v:.1f}" for v in values), paired])
    return markdown_table(["method", "β", "seeds", "top-1 (mean ± std)", "per seed", "vs DKD, same β and seed"],
                          rows, align="lrrrll")


def instrument_table(cells: Cells) -> str:
    rows = []
    for label, beta in _order(cells):
        if not (label.startswith("ddkd") or label == "diffkd"):
            continue
        diagnostics = [run["last_epoch_diagnostics"] for _, run in sorted(cells[(label, beta)].items())]
        values = []
        for key, _ in INSTRUMENTS:
            xs = [d[key] for d in diagnostics if d.get(key) is not None]
            values.append(f"{sum(xs) / len(xs):.3f}" if xs else "–")
        histograms = [d["gamma_logit_hist"] for d in diagnostics if d.get("gamma_logit_hist")]
        total = [sum(column) for column in zip(*histograms)]
        rows.append([label, "" if beta is None else f"{beta:g}", *values, " ".join(map(str, total))])
    return markdown_table(["method", "β", *(title for _, title in INSTRUMENTS), "γ logit histogram (10 bins, 0→1)"],
                          rows, align="lr" + "r" * len(INSTRUMENTS) + "l")


@register_block("ddkd-variant-study")
def _variant_study(results_dir: str) -> str:
    parts = []
    for setting, cells in sorted(study_runs(results_dir).items()):
        parts.append(f"**{setting}** — accuracy (best epoch, top-1 %):\n\n{accuracy_table(cells)}\n\n"
                     f"Instruments at the last epoch (probe batch of 32 training images):\n\n{instrument_table(cells)}")
    return "\n\n".join(parts)
