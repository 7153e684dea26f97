"""``tools/export.py`` / ``ddkd-export``: a run's student as a deployable file, checked by its own runtime.

    ddkd-export RUN_DIR --format onnx|pt2 --out FILE [--checkpoint best|latest] [--images N] [--tolerance T]
                [KEY VALUE ...]

Writes the student alone (image -> logits, a dynamic batch axis; no teacher, no method modules) and its
preprocessing as ``FILE.json`` (also embedded in the file), after loading the export back with the format's
runtime and comparing its logits with the checkpoint's on the test split (random images of the registered
size when the data set is not here). Above a max |difference| of 1e-4 (``--tolerance``) nothing is written
and the tool exits 1 (a wrong export is a bug of the exporter or of this package, never the user's).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from ..engine.runs import STUDENT_CHECKPOINTS
from ..errors import ConfigError
from ..export import FORMATS, TOLERANCE, export_run
from ..plugins import add_plugins_argument, plugins_from_args
from .runner import EXIT_CODES_HELP, OneLineArgumentParser, add_debug_argument, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="ddkd-export", description=__doc__.split("\n\n")[0], epilog=EXIT_CODES_HELP)
    parser.add_argument("run_dir", help="output folder of a training run (holds config.yaml and student_best)")
    parser.add_argument("--format", required=True, metavar="|".join(FORMATS.names()),
                        help="onnx (ONNX Runtime) or pt2 (torch.export; replaces TorchScript, deprecated in PyTorch); "
                        "plugins may add formats")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write (and FILE.json beside it)")
    parser.add_argument("--checkpoint", choices=sorted(STUDENT_CHECKPOINTS), default="best",
                        help="student_best (default) or student_latest")
    parser.add_argument("--images", type=int, default=256, help="images to check the export on (default 256)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE,
                        help=f"largest max |logit difference| accepted (default {TOLERANCE:g}; float32 rounding alone "
                        f"exceeds it in the deepest ImageNet ResNets, see docs/usage.md)")
    add_plugins_argument(parser)
    add_debug_argument(parser)
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides (DATASET.ROOT ...)")
    return parser


def _main(argv: List[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    plugins_from_args(args)
    export_format = FORMATS.get(args.format)  # after the plugins: they may register formats
    if args.images < 1:
        raise ConfigError(f"--images must be at least 1, got {args.images}")
    if not args.tolerance > 0:
        raise ConfigError(f"--tolerance must be positive, got {args.tolerance}")
    report = export_run(args.run_dir, export_format, args.out, args.checkpoint, list(args.opts), args.images,
                        tolerance=args.tolerance)
    print(f"checked with {report.runtime} on {report.checked_on}")
    print(f"max |logit difference| export vs checkpoint: {report.max_abs_diff:.3g} (tolerance {args.tolerance:g})")
    print(f"wrote {report.path} ({report.size_bytes / 2**20:.2f} MiB; {report.preprocessing['model']}, "
          f"{report.parameters:,} parameters, {report.preprocessing['num_classes']} classes, input "
          f"{'×'.join(map(str, report.preprocessing['input_size']))}) and {report.sidecar}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: user errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
