"""``tools/eval.py`` / ``ddkd-eval``: top-1/top-5 of a checkpoint on the validation set.

    python tools/eval.py -m resnet8x4 -c output/.../student_best [-d cifar100] [KEY VALUE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

import torch

from ..dataset.registry import build_splits
from ..distillers import Vanilla
from ..engine.build import build_teacher, teacher_checkpoint_path
from ..engine.cfg import load_config
from ..engine.distributed import select_device
from ..engine.evaluation import evaluate
from ..plugins import add_plugins_argument, plugins_from_args
from .runner import EXIT_CODES_HELP, OneLineArgumentParser, add_debug_argument, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="ddkd-eval", description="Evaluate a model checkpoint.", epilog=EXIT_CODES_HELP)
    parser.add_argument("-m", "--model", required=True, help="model name, e.g. resnet32x4")
    parser.add_argument("-c", "--ckpt", default="",
                        help="checkpoint ({'model': state_dict} or a bare state dict); default: the model's "
                        "mdistiller teacher checkpoint (CIFAR) or torchvision's pretrained weights (ImageNet)")
    parser.add_argument("-d", "--dataset", default="cifar100",
                        help="a registered DATASET.TYPE: cifar100, imagenet, synthetic, or a plugin's")
    parser.add_argument("-bs", "--batch-size", type=int, default=64)
    add_plugins_argument(parser)
    add_debug_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides (DATASET.ROOT ...)")
    return parser


def _main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    plugins_from_args(args)
    cfg = load_config(None, ["DATASET.TYPE", args.dataset, "DATASET.TEST.BATCH_SIZE", str(args.batch_size),
                             "DISTILLER.TEACHER", args.model, "DISTILLER.TEACHER_CKPT", args.ckpt, *args.opts])
    splits = build_splits(cfg)
    path = teacher_checkpoint_path(cfg)
    model = build_teacher(cfg, splits.num_classes, allow_download=False)
    device = select_device(cfg.SOLVER.DEVICE)
    loader = torch.utils.data.DataLoader(splits.test, batch_size=cfg.DATASET.TEST.BATCH_SIZE,
                                         num_workers=cfg.DATASET.NUM_WORKERS)
    metrics = evaluate(Vanilla(model).to(device), loader, device)
    print(json.dumps({"model": args.model, "checkpoint": path or "torchvision pretrained", **metrics}))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
