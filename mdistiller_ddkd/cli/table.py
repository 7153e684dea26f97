"""``tools/table.py`` / ``ddkd-table`` / ``ddkd-suite report``: result tables in the paper's layout.

    python tools/table.py table2                     # the folders of suite table2 (output/suites/table2)
    python tools/table.py output/suites/demo --format csv
    python tools/table.py some/runs --metric last --topk 5 --format json
    python tools/table.py demo --metric both --vs DKD     # best and last epoch; paired differences against DKD

Rows: teacher/student pairs; columns: Teacher, Student and the methods present; each cell is
mean ± std over seeds (n), the paper's value and the difference.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from ..errors import MissingInputError, UserError
from ..plugins import add_plugins_argument, plugins_from_args
from ..suite.compare import METRIC_CHOICES, comparison_report
from ..suite.spec import DEFAULT_OUTPUT, NAMED_SUITES, load_suite
from ..suite.suite_figures import plot_suite
from ..suite.sweep import expected_columns
from .runner import OneLineArgumentParser, one_line, run_main


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``ddkd-table``, shared with ``ddkd-suite report``."""
    parser.add_argument("sources", nargs="+", help=f"run folders (searched recursively), a named suite "
                        f"({', '.join(NAMED_SUITES)}) or a suite YAML file")
    parser.add_argument("--output", default=None, help=f"LOG.PREFIX the suite ran with (default {DEFAULT_OUTPUT})")
    parser.add_argument("--metric", choices=METRIC_CHOICES, default="best",
                        help="best (mdistiller's convention) or last epoch accuracy, or both side by side")
    parser.add_argument("--vs", default=None, metavar="METHOD", help="also compare every other column of each row "
                        "with this one, paired by seed: mean difference, 95%% CI, seeds won, verdict")
    parser.add_argument("--topk", type=int, choices=(1, 5), default=1, help="top-1 or top-5 accuracy")
    parser.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown")
    parser.add_argument("--all", action="store_true", help="also count unfinished runs")
    parser.add_argument("--no-paper", action="store_true", help="without the paper's values")
    parser.add_argument("--plot", default=None, metavar="DIR",
                        help="also write PNG plots (accuracy per epoch per pair, paper vs ours, the runs' diagnostics) "
                        "into DIR (needs matplotlib: pip install 'mdistiller-ddkd[plot]')")
    add_plugins_argument(parser)


def write_plots(roots: List[str], out_dir: str, metric: str = "best", include_unfinished: bool = False,
                pairs=None) -> List[str]:
    """The suite plots of the runs under ``roots`` in ``out_dir``; prints where they went."""
    paths = plot_suite(roots, out_dir, metric=metric, include_unfinished=include_unfinished, pairs=pairs)
    print(f"[mdistiller_ddkd] wrote {len(paths)} plot(s) to {out_dir}", flush=True)
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="ddkd-table", description="Tabulate run folders (results.json) like "
                                     "the paper, with the paper's values and the differences.")
    add_table_arguments(parser)
    return parser


def run_table(args: argparse.Namespace) -> int:
    """Print the table the parsed ``ddkd-table`` options ask for; 2 (with one line) on a user error."""
    roots: List[str] = []
    pairs, dataset, methods = None, None, None
    try:
        plugins_from_args(args)
        for source in args.sources:
            if source in NAMED_SUITES or (source.endswith((".yaml", ".yml")) and os.path.isfile(source)):
                spec = load_suite(source)
                roots.append(os.path.join(args.output or spec.output, spec.name))
                if len(args.sources) == 1:
                    pairs = [(p.teacher, p.student) for p in spec.pairs]
                    dataset = spec.dataset
                    methods = expected_columns(spec.methods, spec.sweep, spec.method_sweep)
            else:
                roots.append(source)
        missing = [r for r in roots if not os.path.exists(r)]
        if missing and not pairs:
            raise MissingInputError(f"no such folder: {', '.join(missing)}")
        text = comparison_report([r for r in roots if os.path.exists(r)], metric=args.metric, topk=args.topk,
                                 fmt=args.format, pairs=pairs, dataset=dataset, include_unfinished=args.all,
                                 with_paper=not args.no_paper, methods=methods, vs=args.vs)
        print(text)
        if args.plot:
            plot_metric = "best" if args.metric == "both" else args.metric
            write_plots([r for r in roots if os.path.exists(r)], args.plot, plot_metric, args.all, pairs)
    except UserError as err:  # PlotUnavailableError among them: no matplotlib
        print(f"error: {one_line(err.args[0] if err.args else err)}", file=sys.stderr)
        return err.exit_code
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


def _main(argv: List[str]) -> int:
    return run_table(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
