"""The step benchmarks' blocks (docs/benchmarks.md#training-cost-per-step), from the JSON files ``ddkd-bench
--json`` wrote into ``docs/results/bench/``: ``step-<pair>-<threads>t.json`` (timings and memory of each
method) and ``breakdown-<pair>.json`` (FLOPs and time of each part of DDKD's extra work)."""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, List, Tuple

from mdistiller_ddkd.bench.breakdown import breakdown_table, profile_table
from mdistiller_ddkd.bench.step import markdown_table as step_table
from mdistiller_ddkd.markdown_table import markdown_table

from .core import read_results_file, register_block

BENCH_DIR = "bench"
#: ``step-<pair>-<threads>t[-<variant>].json``; a variant (e.g. ``tuned-malloc``) is the same protocol under other
#: conditions, which the file's ``allocator_environment`` records
_STEP_FILE = re.compile(r"^step-(?P<pair>\w+?)-(?P<threads>\d+)t(?:-(?P<variant>[\w-]+))?\.json$")
_BREAKDOWN_FILE = re.compile(r"^breakdown-(?P<pair>[\w]+)\.json$")
#: DDKD/DKD paired step ratio the speed work aims at on one CPU thread (docs/benchmarks.md)
TARGET_RATIO = 1.07


def step_results(results_dir: str) -> Dict[Tuple[str, int, str], List[Dict]]:
    """``{(pair, threads, variant): ddkd-bench results}`` of the committed step benchmarks (variant "" for the
    protocol's own runs)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(results_dir, BENCH_DIR, "step-*.json"))):
        match = _STEP_FILE.match(os.path.basename(path))
        if match:
            out[(match["pair"], int(match["threads"]), match["variant"] or "")] = read_results_file(path)
    return dict(sorted(out.items()))


def allocator_label(result: Dict) -> str:
    """How the run's process got its memory: glibc's defaults, or the allocator settings it ran with."""
    env = result.get("allocator_environment") or {}
    return " ".join(f"`{k}={v}`" for k, v in env.items()) or "default"


def _kernel_cell(result: Dict) -> str:
    faults, system = result.get("median_page_faults_per_step"), result.get("median_system_s_per_step")
    if faults is None or system is None:
        return "–"
    return f"{faults / 1000:.1f}k / {1000 * system:.0f}"


def breakdown_results(results_dir: str) -> Dict[str, List[Dict]]:
    """``{pair: ddkd-bench --breakdown rows}`` of the committed breakdowns."""
    out = {}
    for path in sorted(glob.glob(os.path.join(results_dir, BENCH_DIR, "breakdown-*.json"))):
        match = _BREAKDOWN_FILE.match(os.path.basename(path))
        if match:
            out[match["pair"]] = read_results_file(path)
    return out


def flop_floor(rows: List[Dict], method: str = "DDKD") -> float:
    """FLOPs of a ``method`` training step over a DKD step's: the least its time ratio can be."""
    steps = {r["part"]: r["gflop"] for r in rows}
    return steps[f"{method} training step"] / steps["DKD training step"]


def _by_method(results: List[Dict]) -> Dict[str, Dict]:
    return {r["method"]: r for r in results}


def _pair_title(results: List[Dict]) -> str:
    return f"{results[0]['teacher']} → {results[0]['student']}"


@register_block("bench-step-summary")
def _summary(results_dir: str) -> str:
    rows = []
    floors = {pair: flop_floor(rows_) for pair, rows_ in breakdown_results(results_dir).items()}
    for (pair, threads, variant), results in step_results(results_dir).items():
        methods = _by_method(results)
        ddkd, dkd = methods.get("DDKD"), methods.get("DKD")
        if not (ddkd and dkd):
            continue
        floor = floors.get(pair)
        rows.append([_pair_title(results), threads, variant or "default", f"{1000 * dkd['median_step_s']:.1f}",
                     f"{1000 * ddkd['median_step_s']:.1f}", f"{ddkd['paired_ratio_to_dkd']:.3f}",
                     " ".join(f"{r:.3f}" for r in ddkd["paired_ratio_to_dkd_per_repeat"]),
                     f"{_kernel_cell(dkd)} · {_kernel_cell(ddkd)}", f"{floor:.3f}" if floor else "–"])
    return markdown_table(["pair", "threads", "conditions", "DKD step (ms)", "DDKD step (ms)",
                           "DDKD / DKD (paired, median)", "per repeat",
                           "page faults / system ms per step (DKD · DDKD)", "FLOP ratio (floor)"], rows,
                          align="lrlrrrlrr")


@register_block("bench-step-tables")
def _tables(results_dir: str) -> str:
    parts = []
    for (pair, threads, _), results in step_results(results_dir).items():
        first = results[0]
        parts.append(f"**{_pair_title(results)}** (`--pair {pair}`; {first['device']}, {threads} thread"
                     f"{'s' if threads > 1 else ''}, batch {first['batch_size']}, {first['steps']} interleaved steps × "
                     f"{first['repeats']} repeats, {first['clock']} clock, allocator {allocator_label(first)}):"
                     f"\n\n{step_table(results)}")
    return "\n\n".join(parts)


@register_block("bench-breakdown")
def _breakdown(results_dir: str) -> str:
    parts = breakdown_results(results_dir).items()
    return "\n\n".join(f"**{pair}**:\n\n{breakdown_table(rows)}" for pair, rows in parts)


@register_block("bench-profile")
def _profile(results_dir: str) -> str:
    parts = breakdown_results(results_dir).items()
    return "\n\n".join(f"**{pair}**:\n\n{profile_table(rows)}" for pair, rows in parts)


@register_block("bench-step-verdict")
def _verdict(results_dir: str) -> str:
    """One sentence per pair at one thread: the measured ratio against the target and the FLOP floor."""
    floors = {pair: flop_floor(rows) for pair, rows in breakdown_results(results_dir).items()}
    sentences = []
    for (pair, threads, variant), results in step_results(results_dir).items():
        ddkd = _by_method(results).get("DDKD")
        if threads != 1 or not ddkd:
            continue
        if variant:
            sentences.append(f"Under {variant} ({allocator_label(ddkd)}), {_pair_title(results)} costs "
                             f"{ddkd['paired_ratio_to_dkd']:.3f}× (one thread).")
            continue
        ratio, floor = ddkd["paired_ratio_to_dkd"], floors.get(pair)
        verdict = "within" if ratio <= TARGET_RATIO else "above"
        rest = (f"; the FLOPs alone put the floor at {floor:.3f}, so {100 * (ratio - floor) / (ratio - 1):.0f} % of "
                f"DDKD's extra time is beyond its arithmetic" if floor and ratio > 1 else "")
        sentences.append(f"{_pair_title(results)}, one thread: DDKD costs {ratio:.3f}× a DKD step, {verdict} the "
                         f"{TARGET_RATIO:.2f} target{rest}.")
    return " ".join(sentences)
