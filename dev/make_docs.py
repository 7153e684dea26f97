"""``tools/make_docs.py``: the docs' generated numbers (``dev/docgen``).

    python tools/make_docs.py                 # rewrite the generated blocks of README.md and docs/*.md
    python tools/make_docs.py --check         # exit 5 (DOCS_STALE) listing the blocks that differ from docs/results/
    python tools/make_docs.py collect output/suites/demo docs/results/demo-1thread.json
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from mdistiller_ddkd.cli.runner import OneLineArgumentParser, run_main
from mdistiller_ddkd.errors import ExitCode

from .docgen import collect_suite, update_docs, write_results


def _collect(argv: List[str]) -> int:
    parser = OneLineArgumentParser(prog="make_docs.py collect", description="Write the results of one suite run "
                                   "(its output folder, e.g. output/suites/demo) as a JSON file for the docs, e.g. "
                                   "docs/results/demo-1thread.json.")
    parser.add_argument("folder")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    data = collect_suite(args.folder)
    write_results(data, args.out)
    print(f"wrote {args.out}: {len(data['runs'])} runs of suite {data['suite']}")
    return 0


def _rewrite(argv: List[str]) -> int:
    parser = OneLineArgumentParser(prog="make_docs.py", description="Rewrite the generated blocks of README.md and "
                                   "docs/*.md from docs/results/ (`collect` writes those results).")
    parser.add_argument("--check", action="store_true",
                        help=f"change nothing; exit {int(ExitCode.DOCS_STALE)} listing the stale blocks")
    parser.add_argument("--root", default=os.getcwd(), help="the repository root (default: the current folder)")
    args = parser.parse_args(argv)
    stale = update_docs(args.root, check=args.check)
    for item in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {item}")
    if args.check and stale:
        print(f"{len(stale)} generated block(s) differ from docs/results/: run python tools/make_docs.py",
              file=sys.stderr)
        return ExitCode.DOCS_STALE
    return 0


def _main(argv: List[str]) -> int:
    return _collect(argv[1:]) if argv[:1] == ["collect"] else _rewrite(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
