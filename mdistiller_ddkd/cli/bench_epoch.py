"""``tools/bench_epoch.py`` / ``ddkd-bench-epoch``: images/s of whole training epochs (see
``mdistiller_ddkd.bench.epoch``), one JSON line per setting, then a Markdown table.

    ddkd-bench-epoch --pair resnet32x4 resnet8x4 --methods NONE DKD DDKD --paths loader gpu --amp off bf16
    torchrun --nproc_per_node 4 tools/bench_epoch.py ...      (DDP; set DDKD_BENCH_DIR to a shared folder)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import List, Optional

from ..bench import epoch as bench_epoch
from ..errors import UserError
from ..fileio import write_text_atomic
from .runner import OneLineArgumentParser, one_line, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="ddkd-bench-epoch", description=bench_epoch.__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, default=["resnet32x4", "resnet8x4"], metavar=("TEACHER", "STUDENT"))
    parser.add_argument("--methods", nargs="+", default=["NONE", "DKD", "DDKD"])
    parser.add_argument("--paths", nargs="+", default=["loader", "gpu"], choices=["loader", "gpu"])
    parser.add_argument("--amp", nargs="+", default=["off"], choices=["off", "bf16", "fp16"])
    parser.add_argument("--channels-last", nargs="+", default=["off"], choices=["off", "on"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=2048, help="images in the CIFAR-format train set")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per setting; the last one is timed")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (the loader path)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--compile", choices=("off", "model"), default="off",
                        help="torch.compile the distiller, the DDIM loop included (SOLVER.COMPILE)")
    parser.add_argument("--json", default="", help="also write the results to this file")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


def _main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ddkd_bench_") as local_tmp:
        # under torchrun every rank must see the same files: use a folder named after the launch
        workdir = os.environ.get("DDKD_BENCH_DIR") or local_tmp
        try:
            rows = bench_epoch.run_grid(
                args.pair[0], args.pair[1], workdir, args.methods, paths=args.paths, amps=args.amp,
                channels_last=args.channels_last, train_size=args.train_size, batch_size=args.batch_size,
                device=args.device, workers=args.workers, epochs=args.epochs,
                extra_opts=["SOLVER.COMPILE", "True"] if args.compile == "model" else [],
            )
        except UserError as err:  # an unknown method or model, a pair a method cannot serve
            print(f"error: {one_line(err.args[0] if err.args else err)}", file=sys.stderr)
            return err.exit_code
        if int(os.environ.get("RANK", "0")) == 0:
            print(bench_epoch.markdown_table(rows))
            if args.json:
                write_text_atomic(args.json, json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
