"""``tools/train.py`` / ``ddkd-train``: train one method on one teacher/student pair from a config file.

    python tools/train.py --cfg configs/cifar100/ddkd/vgg13_mv2.yaml [--resume] [KEY VALUE ...]
    torchrun --nproc_per_node 4 tools/train.py --cfg ...      (DistributedDataParallel)
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..engine.checkpoint import CheckpointMismatchError
from ..plugins import PluginError, add_plugins_argument, plugins_from_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddkd-train",
        description="Train a student with a distillation method (mdistiller-compatible configs). "
        "KEY VALUE pairs after the options override config keys, e.g. SOLVER.EPOCHS 2 SOLVER.DEVICE cpu.",
    )
    parser.add_argument("--cfg", type=str, help="config file (a path, or a packaged configs/... name)")
    parser.add_argument("--resume", action="store_true", help="continue the run in the output folder from `latest`")
    parser.add_argument("--list-configs", action="store_true", help="print the packaged config files and exit")
    add_plugins_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return parser


#: the errors a user can fix; they are reported as one message, without a traceback
USER_ERRORS = (FileNotFoundError, FileExistsError, KeyError, ValueError, CheckpointMismatchError, PluginError)


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_configs:
        from ..configs_path import list_packaged_configs

        print("\n".join(list_packaged_configs()))
        return 0
    if not args.cfg and not args.opts:
        build_parser().print_usage(sys.stderr)
        print("ddkd-train: error: --cfg FILE (or KEY VALUE overrides) is required", file=sys.stderr)
        return 2
    from ..engine.cfg import load_config
    from ..engine.trainer import NonFiniteLossError, train

    try:
        plugins_from_args(args)
        cfg = load_config(args.cfg, args.opts)
        results = train(cfg, resume=args.resume)
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(f"[mdistiller_ddkd] done: best top-1 {results['best_acc']:.2f}, last top-1 {results['last_acc']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
