"""Markdown tables of the DDKD-variant study from its summary JSON (``study.py summary``).

    python docs/results/ddkd_variants/tables.py docs/results/ddkd_variants/study.json [--settings demo,lowdata]

Accuracy: best-epoch test top-1, mean ± sample std over seeds, each seed's value, and for every method with a β
the per-seed paired difference against DKD at the same β and seed (same seed = same data order), with its mean.
Instruments: last-epoch values of the diagnostics (probe batch of training images), means over seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from typing import Dict, List, Optional, Sequence

NAME = re.compile(r"^(?P<setting>[^/]+)/(?P<label>[a-z0-9_]+?)(?:-b(?P<beta>[0-9.]+))?-s(?P<seed>\d+)$")
INSTRUMENTS = [
    ("diff_logit_t0_250", "logit diff. loss t<250"),
    ("diff_feat_t0_250", "feat. diff. loss t<250"),
    ("gamma_logit_std", "γ logit std"),
    ("gamma_logit_mean", "γ logit mean"),
    ("logit_kl_student", "KL student"),
    ("logit_kl_raw", "KL raw"),
    ("logit_kl_denoised", "KL denoised"),
    ("feat_mse_raw", "feat. MSE raw"),
    ("feat_mse_denoised", "feat. MSE denoised"),
]


def mean_std(values: Sequence[float]) -> str:
    if not values:
        return "–"
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return f"{m:.1f} ± {s:.1f}"


def parse(runs: Dict[str, dict]) -> Dict[str, Dict[tuple, Dict[int, dict]]]:
    """setting -> (label, beta or None) -> seed -> run record (finished runs only)."""
    out: Dict[str, Dict[tuple, Dict[int, dict]]] = {}
    for name, rec in runs.items():
        m = NAME.match(name)
        if not m or not rec.get("finished"):
            continue
        beta = float(m["beta"]) if m["beta"] else None
        out.setdefault(m["setting"], {}).setdefault((m["label"], beta), {})[int(m["seed"])] = rec
    return out


def _paired(cells: Dict[int, dict], dkd: Optional[Dict[int, dict]]) -> str:
    if not dkd:
        return ""
    diffs = [cells[s]["best_acc"] - dkd[s]["best_acc"] for s in sorted(cells) if s in dkd]
    if not diffs:
        return ""
    return f"{sum(diffs) / len(diffs):+.2f} ({', '.join(f'{d:+.1f}' for d in diffs)})"


def accuracy_table(setting: Dict[tuple, Dict[int, dict]], labels: Optional[List[str]] = None) -> str:
    rows = ["| method | β | n | top-1 (mean ± std) | per seed | paired Δ vs DKD (mean; per seed) |",
            "|---|---:|---:|---|---|---|"]
    order = sorted(setting, key=lambda k: (k[1] or 0.0, _rank(k[0]), k[0]))
    for label, beta in order:
        if labels and label not in labels:
            continue
        cells = setting[(label, beta)]
        values = [cells[s]["best_acc"] for s in sorted(cells)]
        dkd = setting.get(("dkd", beta)) if beta is not None and label != "dkd" else None
        rows.append(f"| {label} | {'' if beta is None else f'{beta:g}'} | {len(values)} | {mean_std(values)} | "
                    f"{', '.join(f'{v:.1f}' for v in values)} | {_paired(cells, dkd)} |")
    return "\n".join(rows)


def _rank(label: str) -> int:
    fixed = ["none", "kd", "diffkd", "dkd", "ddkd"]
    return fixed.index(label) if label in fixed else len(fixed)


def instrument_table(setting: Dict[tuple, Dict[int, dict]]) -> str:
    head = "| method | β | " + " | ".join(title for _, title in INSTRUMENTS) + " | γ logit histogram (10 bins) |"
    rows = [head, "|---|---:|" + "---:|" * len(INSTRUMENTS) + "---|"]
    for (label, beta), cells in sorted(setting.items(), key=lambda kv: (kv[0][1] or 0.0, _rank(kv[0][0]), kv[0][0])):
        if not (label.startswith("ddkd") or label == "diffkd"):
            continue
        diags = [cells[s]["last_epoch_diagnostics"] for s in sorted(cells)]
        vals = []
        for key, _ in INSTRUMENTS:
            xs = [d[key] for d in diags if d.get(key) is not None]
            vals.append(f"{sum(xs) / len(xs):.3f}" if xs else "–")
        hist = [d.get("gamma_logit_hist") for d in diags if d.get("gamma_logit_hist")]
        total = [sum(col) for col in zip(*hist)] if hist else []
        rows.append(f"| {label} | {'' if beta is None else f'{beta:g}'} | " + " | ".join(vals) + f" | {total} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("summary")
    parser.add_argument("--settings", default="")
    parser.add_argument("--labels", default="")
    args = parser.parse_args()
    with open(args.summary) as f:
        runs = json.load(f)["runs"]
    data = parse(runs)
    labels = [x for x in args.labels.split(",") if x] or None
    for setting in [s for s in args.settings.split(",") if s] or sorted(data):
        if setting not in data:
            continue
        print(f"\n### {setting}\n\n{accuracy_table(data[setting], labels)}\n\n{instrument_table(data[setting])}")


if __name__ == "__main__":
    main()
