"""Markdown rendering of a ``ddkd-diagnose`` report (the dict ``cli.diagnose.diagnose`` returns)."""

from __future__ import annotations

import re
from typing import Dict, List, Optional

from ..markdown_table import markdown_table

#: (scalar name without the side, label) of the raw-vs-denoised table, per branch
GAP_ROWS = (
    ("feature", "feat_mse", "MSE to the teacher latent"),
    ("feature", "feat_cka", "linear CKA with the teacher latent"),
    ("logit", "logit_kl", "KL(teacher ‖ ·) at T={T}"),
    ("logit", "logit_agree", "top-1 agreement with the teacher (%)"),
    ("logit", "logit_acc", "top-1 accuracy (%)"),
    ("logit", "logit_norm", "mean logit norm (teacher: {norm_t})"),
)


def _fmt(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.4g}"


def _gap_table(s: Dict[str, float], temperature: float) -> str:
    rows = []
    for branch, stem, label in GAP_ROWS:
        raw, denoised = s.get(f"{stem}_raw"), s.get(f"{stem}_denoised")
        if raw is None and denoised is None and f"{stem}_student" not in s:
            continue
        delta = None if raw is None or denoised is None else denoised - raw
        label = label.format(T=f"{temperature:g}", norm_t=_fmt(s.get("logit_norm_teacher")))
        rows.append([branch, label, _fmt(s.get(f"{stem}_student")), _fmt(raw),
                     _fmt(denoised), "" if delta is None else f"{delta:+.4g}"])
    if "ae_mse" in s:
        rows.append(["autoencoder", "reconstruction of the teacher feature: MSE / CKA", "", "",
                     f"{s['ae_mse']:.4g} / {s['ae_cka']:.4g}", ""])
    return markdown_table(["branch", "metric", "student", "raw (0 DDIM steps)", "denoised", "denoised − raw"],
                          rows, "llrrrr")


def _gamma_table(gamma: Dict[str, Dict]) -> str:
    rows = [[name, f"{g['mean']:.4f}", f"{g['std']:.4f}", f"{g['min']:.4f}", f"{g['max']:.4f}",
             " ".join(str(c) for c in g["hist"])] for name, g in gamma.items()]
    return markdown_table(["branch", "γ mean", "std", "min", "max", "histogram (10 bins over [0, 1])"], rows,
                          "lrrrrl")


def _diffusion_table(s: Dict[str, float]) -> Optional[str]:
    buckets: Dict[str, Dict[str, float]] = {}
    for key, value in s.items():
        match = re.fullmatch(r"diff_(\w+?)_t(\d+)_(\d+)", key)
        if match:
            buckets.setdefault(match.group(1), {})[f"t {match.group(2)}–{match.group(3)}"] = value
    if not buckets:
        return None
    headers = list(next(iter(buckets.values())))
    rows = [[name, *(_fmt(v.get(h)) for h in headers)] for name, v in buckets.items()]
    return markdown_table(["branch", *headers], rows, "l" + "r" * len(headers))


def _gradient_table(s: Dict[str, float]) -> Optional[str]:
    terms = [k[len("grad_"):] for k in s
             if k.startswith("grad_") and not k.startswith(("grad_logits_", "grad_cos_ce_"))]
    if not terms:
        return None
    total = s.get("grad_total") or 0.0
    rows = [[term, _fmt(s[f"grad_{term}"]), _fmt(s.get(f"grad_logits_{term}")),
             "" if term == "total" or not total else f"{s[f'grad_{term}'] / total:.2f}",
             _fmt(s.get(f"grad_cos_ce_{term}"))] for term in terms]
    return markdown_table(["loss term", "‖∂term/∂θ_student‖", "‖∂term/∂logits‖", "÷ total", "cos with CE's"],
                          rows, "lrrrr")


def render_markdown(report: Dict) -> str:
    """The report as Markdown: gap raw vs denoised, γ, diffusion loss by timestep, gradient norms."""
    s = report["scalars"]
    bn = "each batch's own statistics (as in training)" if report["bn"] == "batch" else "running statistics"
    parts: List[str] = [
        f"**{report['method']} {report['teacher']} → {report['student']}**: `{report['run']}`, checkpoint "
        f"`{report['checkpoint']}` (epoch {report['epoch']}), {report['images']} test images, BatchNorm: {bn}",
        "**Gap to the teacher, raw vs denoised**\n\n" + _gap_table(s, report.get("logit_temperature", 1.0)),
    ]
    if report["gamma"]:
        parts.append("**Adaptive noise weight γ**\n\n" + _gamma_table(report["gamma"]))
    for title, table in (("**Diffusion loss (eq. 5) by timestep range**", _diffusion_table(s)),
                         ("**Gradient norm of each loss term (mean over batches)**", _gradient_table(s))):
        if table:
            parts.append(f"{title}\n\n{table}")
    return "\n\n".join(parts)
