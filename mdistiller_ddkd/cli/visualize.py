"""``tools/visualize.py`` / ``ddkd-visualize``: t-SNE and correlation figures of one or more runs, side by side.

    ddkd-visualize RUN_DIR [RUN_DIR ...] --out DIR [--checkpoint best|latest] [--max-samples N] [--seed S]
                   [--teacher-ckpt FILE] [KEY VALUE ...]

For each run, on the test split: the t-SNE of the student's pooled features coloured by class, and
mdistiller's correlation figure, |S − T| with the diagonal set to 0, where row c of S (T) is the student's
(teacher's) mean logit vector over the test images of class c. Writes ``tsne.png`` and ``correlation.png``
(the runs side by side) and each panel as ``tsne_<run>.png`` / ``correlation_<run>.png``, and prints the
mean (and max) of the off-diagonal entries per run. Needs the ``[viz]`` extra (scikit-learn, matplotlib).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import List, Optional, Tuple

from ..engine.runs import STUDENT_CHECKPOINTS
from ..errors import ConfigError
from ..plugins import add_plugins_argument, plugins_from_args
from ..visualize import require_viz, visualize_runs
from .runner import EXIT_CODES_HELP, OneLineArgumentParser, add_debug_argument, run_main

CONFIG_KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="ddkd-visualize", description=__doc__.split("\n\n")[0], epilog=EXIT_CODES_HELP)
    parser.add_argument("items", nargs="+", metavar="RUN_DIR",
                        help="output folders of training runs (any method), then KEY VALUE config overrides for all")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG figures")
    parser.add_argument("--checkpoint", choices=sorted(STUDENT_CHECKPOINTS), default="best",
                        help="student_best (default) or student_latest")
    parser.add_argument("--teacher-ckpt", default="", metavar="FILE",
                        help="teacher checkpoint for every run (default: each run's DISTILLER.TEACHER_CKPT, resolved "
                        "as training does)")
    parser.add_argument("--max-samples", type=int, default=3000, help="test images in the t-SNE (default 3000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the t-SNE and of its sample (default 0)")
    add_plugins_argument(parser)
    add_debug_argument(parser)
    return parser


def _main(argv: List[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    plugins_from_args(args)
    run_dirs, opts = split_items(args.items)
    if args.max_samples < 2:
        raise ConfigError(f"--max-samples must be at least 2, got {args.max_samples}")
    require_viz()
    report = visualize_runs(run_dirs, args.out, args.checkpoint, args.teacher_ckpt, opts, args.max_samples,
                            args.seed)
    for n in report.numbers:
        print(f"{n.label}: |S-T| off the diagonal: mean {n.mean_off_diagonal:.6f}, max {n.max_off_diagonal:.6f} "
              f"({n.title}; t-SNE of {n.tsne_samples} test images)")
    for path in report.paths:
        print(f"wrote {path}")
    return 0


def split_items(items: List[str]) -> Tuple[List[str], List[str]]:
    """``(run folders, KEY VALUE overrides)``: the overrides start at the first config key (``A.B``, upper
    case) that is not an existing path."""
    for i, item in enumerate(items):
        if CONFIG_KEY.fullmatch(item) and not os.path.exists(item):
            if i == 0:
                raise ConfigError(f"give at least one run folder before the KEY VALUE overrides (got {item!r} first)")
            return list(items[:i]), list(items[i:])
    return list(items), []


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
