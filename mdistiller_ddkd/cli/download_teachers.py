"""``tools/download_teachers.py`` / ``ddkd-download-teachers``: fetch mdistiller's CIFAR-100 teacher
checkpoints (``cifar_teachers.tar``) into ``download_ckpts/cifar_teachers/``.

    python tools/download_teachers.py [--dest download_ckpts] [--url URL] [--force]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ..download import (
    CKPT_NAME,
    DEFAULT_TEACHERS_URL,
    URL_ENV,
    DownloadError,
    TeacherArchiveError,
    ensure_cifar_teachers,
)
from ..errors import ExitCode
from .runner import OneLineArgumentParser, add_debug_argument, one_line, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="ddkd-download-teachers",
        description=f"Download, check and unpack mdistiller's CIFAR-100 teachers (default {DEFAULT_TEACHERS_URL}; "
        f"${URL_ENV} overrides it).",
    )
    parser.add_argument("--dest", default="download_ckpts", help="folder that receives cifar_teachers/ "
                        "(default: ./download_ckpts, where the configs look for teachers)")
    parser.add_argument("--url", default=None, help="archive URL (http(s):// or file://)")
    parser.add_argument("--force", action="store_true", help="download even when teachers are present "
                        "(adds missing ones; existing files are kept)")
    add_debug_argument(parser)
    return parser


def _main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        folder = ensure_cifar_teachers(args.dest, args.url, force=args.force)
    except (DownloadError, TeacherArchiveError) as err:
        print(f"error: {one_line(str(err))}", file=sys.stderr)
        return ExitCode.DOWNLOAD_FAILED  # a user mistake (e.g. a bad --dest) gives USER_ERROR
    names = sorted(d for d in os.listdir(folder) if os.path.isfile(os.path.join(folder, d, CKPT_NAME)))
    print(f"teachers in {os.path.abspath(folder)}: {', '.join(names)}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
