"""Where DDKD's step time goes beyond DKD's: each part of DDKD's extra work (the autoencoder with the
feature branch, the logit branch) run alone, forward and backward, at the shapes the pair produces, with its
FLOPs (``torch.utils.flop_counter``) and its time with the diffusion modules' faster formulations on and off
(``diffusion.blocks.fast_paths``) — the profile before and after them, in one process, interleaved — and,
with them on, the milliseconds each kind of work takes (``op_profile``).

The whole steps of DKD and DDKD are counted too: their FLOP ratio is the floor a DDKD step can reach, and the
measured ratio (``step.run_benchmark``) is how close it gets.
"""

from __future__ import annotations

import statistics
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ..diffusion.blocks import fast_paths, mse_loss
from ..markdown_table import markdown_table
from .measurement import make_clock
from .step import build_distiller, build_step, pair_config_file


def _flops(fn: Callable[[], None]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def ddkd_parts(distiller, batch: Dict[str, torch.Tensor]) -> Dict[str, Callable[[], None]]:
    """The extra work of a DDKD (or DIFFKD) step, part by part, as ``forward + backward`` callables on the
    tensors the pair produces: ``autoencoder + feature branch`` and ``logit branch``."""
    with torch.no_grad():
        logits_s, feats_s = distiller.student(batch["image"])
        logits_t, feats_t = distiller.teacher_forward(batch["image"])
    feat_s = feats_s["feats"][-1].detach().requires_grad_()
    logits_s = logits_s.detach().requires_grad_()
    parts: Dict[str, Callable[[], None]] = {}
    if distiller.feat_branch is not None:
        def feature() -> None:
            aligned, feat_t, latent_t, reconstruction = distiller.feature_pair({"feats": [feat_s]}, feats_t)
            denoised, loss_diff = distiller.feat_branch(aligned, latent_t)
            loss = mse_loss(denoised, latent_t) + loss_diff
            if reconstruction is not None:
                loss = loss + mse_loss(reconstruction, feat_t)
            loss.backward()
        parts["autoencoder + feature branch"] = feature
    if distiller.logit_branch is not None:
        def logit() -> None:
            denoised, loss_diff = distiller.logit_branch(logits_s[:, :, None, None], logits_t[:, :, None, None])
            (denoised.square().mean() + loss_diff).backward()
        parts["logit branch"] = logit
    return parts


#: the profile's kinds of work: aten operators by name (their self CPU time); what no kind names — views,
#: autograd's bookkeeping, allocation, Python — is "the rest", the part's measured time minus the kinds'
OP_KINDS: Dict[str, Tuple[str, ...]] = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "convolutions": ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_slow_conv2d_forward",
                     "aten::_slow_conv2d_backward"),
    "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward"),
    "element-wise": ("aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::div", "aten::sub", "aten::rsub",
                     "aten::neg", "aten::relu_", "aten::clamp_min_", "aten::threshold_backward", "aten::copy_",
                     "aten::clone", "aten::fill_", "aten::zero_", "aten::where", "aten::pow", "aten::sqrt"),
    "random noise": ("aten::normal_",),
    "reductions and losses": ("aten::sum", "aten::mean", "aten::mse_loss", "aten::mse_loss_backward",
                              "aten::_softmax", "aten::_softmax_backward_data", "aten::embedding_dense_backward"),
}
REST = "the rest"


def op_profile(fn: Callable[[], None], rounds: int) -> Dict[str, float]:
    """Milliseconds per call of ``fn`` in each of ``OP_KINDS`` (self CPU time of its operators under
    ``torch.profiler``, mean over ``rounds`` calls). An operator's self time under the profiler carries part
    of the profiler's own per-operator cost, so the kinds lean high, and "the rest" — the part's time measured
    without the profiler, minus the kinds — leans low."""
    kind_of = {op: kind for kind, ops in OP_KINDS.items() for op in ops}
    totals = dict.fromkeys(OP_KINDS, 0.0)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            fn()
    for event in prof.key_averages():
        kind = kind_of.get(event.key)
        if kind is not None:
            totals[kind] += event.self_cpu_time_total / 1000.0 / rounds
    return totals


def _time(parts: Dict[str, Callable[[], None]], rounds: int, clock) -> Dict[str, Dict[str, float]]:
    """Median seconds of each part with the fast paths on and off, alternating, ``rounds`` times."""
    times = {name: {"fast": [], "plain": []} for name in parts}
    for _ in range(rounds):
        for name, fn in parts.items():
            for mode in ("plain", "fast"):
                with fast_paths(mode == "fast"):
                    times[name][mode].append(clock(fn))
    return {name: {mode: statistics.median(v) for mode, v in t.items()} for name, t in times.items()}


def breakdown(teacher: str, student: str, pair: Optional[str] = None, method: str = "DDKD",
              batch_size: int = 64, rounds: int = 10, threads: int = 1, device: str = "cpu",
              clock: str = "cpu", opts: Sequence[str] = ()) -> List[Dict]:
    """Rows ``{part, gflop, ms_plain, ms_fast}``: the whole DKD and ``method`` steps (FLOPs; their times come
    from ``ddkd-bench``) and each part of ``method``'s extra work."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    rows = []
    for name in ("DKD", method):
        step, _, _ = build_step(name, teacher, student, batch_size=batch_size, device=device,
                                cfg_file=pair_config_file(name, pair, "cifar100"), opts=opts)
        step()
        rows.append({"part": f"{name} training step", "gflop": _flops(step) / 1e9, "ms_plain": None, "ms_fast": None})
    distiller, batch = build_distiller(method, teacher, student, batch_size=batch_size, device=device,
                                       cfg_file=pair_config_file(method, pair, "cifar100"), opts=opts)
    parts = ddkd_parts(distiller, batch)
    for fn in parts.values():
        fn()
    timed = _time(parts, rounds, make_clock(clock, dev))
    for name, fn in parts.items():
        ms_fast = 1000 * timed[name]["fast"]
        kinds = op_profile(fn, rounds)
        kinds[REST] = ms_fast - sum(kinds.values())
        rows.append({"part": name, "gflop": _flops(fn) / 1e9, "ms_plain": 1000 * timed[name]["plain"],
                     "ms_fast": ms_fast, "ms_by_kind": {k: round(v, 2) for k, v in kinds.items()}})
    return rows


def breakdown_table(rows: Sequence[Dict]) -> str:
    """The rows as Markdown: FLOPs, time before and after the fast paths, and the FLOP rate after."""
    cells = []
    for r in rows:
        timed = r["ms_fast"] is not None
        cells.append([r["part"], f"{r['gflop']:.2f}", f"{r['ms_plain']:.1f}" if timed else "–",
                      f"{r['ms_fast']:.1f}" if timed else "–",
                      f"{r['gflop'] / r['ms_fast'] * 1000:.0f}" if timed else "–"])
    return markdown_table(["part", "GFLOP", "ms (plain)", "ms (fast paths)", "GFLOP/s (fast)"], cells,
                          align="lrrrr")


def profile_table(rows: Sequence[Dict]) -> str:
    """Where each part's time goes (fast paths on): milliseconds per kind of work (``op_profile``), as Markdown."""
    kinds = [*OP_KINDS, REST]
    cells = [[r["part"], *(f"{r['ms_by_kind'][k]:.1f}" for k in kinds), f"{r['ms_fast']:.1f}"]
             for r in rows if r.get("ms_by_kind")]
    return markdown_table(["part (ms)", *kinds, "measured"], cells, align="l" + "r" * (len(kinds) + 1))
