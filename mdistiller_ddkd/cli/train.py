"""``tools/train.py`` / ``ddkd-train``: train one method on one teacher/student pair from a config file.

    python tools/train.py --cfg configs/cifar100/ddkd/vgg13_mv2.yaml [--resume] [KEY VALUE ...]
    torchrun --nproc_per_node 4 tools/train.py --cfg ...      (DistributedDataParallel)
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ..configs_path import list_packaged_configs
from ..engine.cfg import load_config
from ..engine.trainer import train
from ..errors import UserError
from ..plugins import add_plugins_argument, plugins_from_args
from ..signals import handle_stop_signals
from .runner import EXIT_CODES_HELP, OneLineArgumentParser, add_debug_argument, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="ddkd-train",
        description="Train a student with a distillation method (mdistiller-compatible configs). "
        "KEY VALUE pairs after the options override config keys, e.g. SOLVER.EPOCHS 2 SOLVER.DEVICE cpu.",
        epilog=EXIT_CODES_HELP + " One process writes an output folder at a time (a second one refuses).",
    )
    parser.add_argument("--cfg", type=str, help="config file (a path, or a packaged configs/... name)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in the output folder from `latest` (exactly where it stopped); "
                        "refused if the config changes the run's maths (logging, workers, epochs may change)")
    parser.add_argument("--resume-with-changes", action="store_true",
                        help="--resume even though the config changes the run's maths (noted in the worklog)")
    parser.add_argument("--list-configs", action="store_true", help="print the packaged config files and exit")
    add_plugins_argument(parser)
    add_debug_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser


#: options without a value, accepted after the KEY VALUE pairs too (``... SOLVER.EPOCHS 4 --resume``)
_SWITCHES = ("--resume", "--resume-with-changes", "--list-configs")


def _main(argv: List[str]) -> int:
    argv = [a for a in argv if a in _SWITCHES] + [a for a in argv if a not in _SWITCHES]
    args = build_parser().parse_args(argv)
    if args.list_configs:
        print("\n".join(list_packaged_configs()))
        return 0
    if not args.cfg and not args.opts:
        raise UserError("--cfg FILE (or KEY VALUE overrides) is required (see ddkd-train --help)")
    with handle_stop_signals():
        plugins_from_args(args)
        cfg = load_config(args.cfg, args.opts)
        resume = args.resume or args.resume_with_changes
        results = train(cfg, resume=resume, allow_changes=args.resume_with_changes)
    last = results["last_acc"]
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun: once
        print(f"[mdistiller_ddkd] done: best top-1 {results['best_acc']:.2f}, last top-1 "
              f"{'-' if last is None else f'{last:.2f}'}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
