"""``tools/bench_step.py`` / ``ddkd-bench``: median wall time and peak memory of one training step per
method (see ``mdistiller_ddkd.bench.step``), as JSON and a Markdown table.

    ddkd-bench --teacher resnet32x4 --student resnet8x4 --pair res32x4_res8x4 \
        --methods NONE KD DKD DIFFKD DDKD --device cpu
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from ..bench.breakdown import breakdown, breakdown_table, profile_table
from ..bench.measurement import CLOCKS
from ..bench.step import DEFAULT_METHODS, markdown_table, run_benchmark
from ..engine.distributed import select_device
from ..errors import ConfigError
from ..fileio import write_text_atomic
from .runner import OneLineArgumentParser, run_main


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="ddkd-bench",
                              description="Median wall time and peak memory of one distillation training step.")
    p.add_argument("--teacher", required=True, help="teacher model name (e.g. resnet32x4)")
    p.add_argument("--student", required=True, help="student model name (e.g. resnet8x4)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="distiller names")
    p.add_argument("--pair", default=None, help="pair whose shipped config files to merge, e.g. res32x4_res8x4")
    p.add_argument("--dataset", default="cifar100", help="a registered DATASET.TYPE (cifar100, imagenet, ...)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per method (>= 20 recommended)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per method first")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (CUDA when there is one)")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-method memory processes")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"], help="autocast precision")
    p.add_argument("--channels-last", action="store_true", help="channels-last models and images")
    p.add_argument("--repeats", type=int, default=5,
                   help="repeats of the interleaved steps; the paired ratio to DKD is the median over repeats of "
                   "each repeat's median per-round ratio (default 5)")
    p.add_argument("--clock", choices=CLOCKS, default=None,
                   help="wall (default on CPU), cpu (this process's CPU time: for a loaded machine), "
                   "cuda (CUDA events; the default on CUDA)")
    p.add_argument("--compile", choices=("off", "model"), default="off",
                   help="torch.compile the whole distiller, the DDIM loop included (SOLVER.COMPILE)")
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="a config override for every method (repeatable)")
    p.add_argument("--breakdown", action="store_true",
                   help="instead: FLOPs of the DKD and DDKD steps (the floor of their ratio) and each part of "
                   "DDKD's extra work timed with the diffusion modules' fast paths on and off (--clock: cpu)")
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    device = select_device(args.device)  # a missing GPU is one line, before anything is built
    clock = args.clock or ("cuda" if device.type == "cuda" else "wall")
    if clock == "cuda" and device.type != "cuda":
        raise ConfigError("--clock cuda times CUDA events and needs --device cuda")
    if args.repeats < 1 or args.steps < 1:
        raise ConfigError("--repeats and --steps must be at least 1")
    opts = [x for pair in args.set for x in pair] + (["SOLVER.COMPILE", "True"] if args.compile == "model" else [])
    if args.breakdown:
        rows = breakdown(args.teacher, args.student, args.pair, batch_size=args.batch_size, rounds=args.steps,
                         threads=args.threads, device=str(device), clock=args.clock or "cpu", opts=opts)
        return _report(rows, breakdown_table(rows) + "\n\n" + profile_table(rows), args.json)
    results = run_benchmark(
        args.teacher, args.student, args.methods, pair=args.pair, dataset=args.dataset,
        batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, device=str(device),
        threads=args.threads, memory=not args.no_memory, amp=args.amp, channels_last=args.channels_last,
        repeats=args.repeats, clock=clock, opts=opts,
    )
    return _report(results, markdown_table(results), args.json)


def _report(results, table: str, json_path: Optional[str]) -> int:
    """Print the results as JSON (also written to ``json_path`` when given), then as a Markdown table."""
    text = json.dumps(results, indent=2)
    print(text)
    if json_path:
        write_text_atomic(json_path, text + "\n")
    print()
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
