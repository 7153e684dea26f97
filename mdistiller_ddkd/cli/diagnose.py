"""``tools/diagnose.py`` / ``ddkd-diagnose``: what the denoiser of a DDKD/DIFFKD run does, on the test set.

    ddkd-diagnose output/demo/ddkd,resnet20,resnet8 [--batches 4] [--json] [--plot DIR] [KEY VALUE ...]

Loads the run's ``config.yaml`` and its distiller checkpoint ``latest`` (with the diffusion modules),
measures raw-vs-denoised gap metrics, γ and per-term gradient norms (docs/diagnostics.md) and prints a
Markdown report (``--json``: one JSON object). ``--plot DIR`` also draws the run's per-epoch diagnostics.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import Dict, List, Optional

import torch

from ..dataset.registry import build_splits
from ..diagnostics import is_diffusion_distiller
from ..diagnostics.gap import gap_over_batches
from ..diagnostics.markdown_report import render_markdown
from ..diagnostics.run_figures import plot_run
from ..engine.distributed import select_device
from ..engine.runs import load_distiller, open_run
from ..errors import ConfigError
from ..matplotlib_support import require_matplotlib
from ..plugins import add_plugins_argument, plugins_from_args
from .runner import OneLineArgumentParser, add_debug_argument, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="ddkd-diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="output folder of a DDKD or DIFFKD run (holds config.yaml and latest)")
    parser.add_argument("--batches", type=int, default=0, help="test batches to measure (default 0: all)")
    parser.add_argument("--checkpoint", default="latest", help="distiller checkpoint in RUN_DIR (default latest)")
    parser.add_argument("--teacher-ckpt", default="", metavar="FILE",
                        help="teacher checkpoint to build the run's teacher from (default: the run's "
                        "DISTILLER.TEACHER_CKPT, resolved as training does); the checkpoint's weights replace it")
    parser.add_argument("--bn", choices=("batch", "running"), default="batch",
                        help="BatchNorm statistics: each batch's own, as in training (default), or the running ones")
    parser.add_argument("--no-gradients", action="store_true", help="skip the per-term gradient norms")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of Markdown")
    parser.add_argument("--plot", metavar="DIR", help="write PNG plots (needs matplotlib) into DIR")
    add_plugins_argument(parser)
    add_debug_argument(parser)
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides (DATASET.ROOT ...)")
    return parser


def load_run(run_dir: str, checkpoint: str, opts: List[str], teacher_ckpt: str = ""):
    """``(cfg, distiller, splits, epoch)`` of a DDKD/DIFFKD run folder; what a user can fix is a
    ``UserError`` saying what to do."""
    run = open_run(run_dir, opts, teacher_ckpt)
    run.checkpoint(checkpoint)  # before the data and the models are built
    splits = build_splits(run.cfg)
    distiller, epoch = load_distiller(run, checkpoint, len(splits.train), splits.num_classes)
    if not is_diffusion_distiller(distiller):
        raise ConfigError(f"{run_dir} is a {run.cfg.DISTILLER.TYPE} run; ddkd-diagnose measures the denoiser of "
                          f"DDKD and DIFFKD runs (per-term gradient norms of any method: LOG.DIAGNOSTICS True)")
    return run.cfg, distiller, splits, epoch


def diagnose(args) -> Dict:
    """The report of ``args.run_dir`` as a dict (see ``--json``)."""
    cfg, distiller, splits, epoch = load_run(args.run_dir, args.checkpoint, list(args.opts), args.teacher_ckpt)
    device = select_device(cfg.SOLVER.DEVICE)
    distiller.to(device)
    loader = torch.utils.data.DataLoader(splits.test, batch_size=cfg.DATASET.TEST.BATCH_SIZE, shuffle=False)
    batches = itertools.islice(loader, args.batches) if args.batches > 0 else loader
    measured = gap_over_batches(distiller, batches, device, train_mode=args.bn == "batch", epoch=max(epoch, 1),
                                gradients=not args.no_gradients)
    return {"run": args.run_dir, "method": cfg.DISTILLER.TYPE, "teacher": cfg.DISTILLER.TEACHER,
            "student": cfg.DISTILLER.STUDENT, "checkpoint": args.checkpoint, "epoch": epoch, "bn": args.bn,
            "logit_temperature": distiller.logit_temperature, **measured}


def _main(argv: List[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    plugins_from_args(args)
    if args.batches < 0:
        raise ConfigError(f"--batches must be 0 (all) or positive, got {args.batches}")
    if args.plot:
        require_matplotlib()
    report = diagnose(args)
    plots = plot_run(args.run_dir, args.plot) if args.plot else []
    if args.json:
        print(json.dumps({**report, "plots": plots}, indent=1))
    else:
        print(render_markdown(report))
        for path in plots:
            print(f"plot: {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
