"""``tools/suite.py`` / ``ddkd-suite``: run a whole table — methods x teacher/student pairs x seeds.

    python tools/suite.py demo                               # offline demo (synthetic data), then its table
    python tools/suite.py table2 --dry-run                   # one training command per run
    python tools/suite.py table2 --jobs 8                    # 8 runs at a time, one GPU each
    python tools/suite.py my_suite.yaml --seeds 1 SOLVER.EPOCHS 2
    python tools/suite.py report table2 [--metric last]      # the table of a suite's output folders

Finished runs are skipped and interrupted ones resumed, so a suite can be restarted at any time.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import List, Optional

from ..suite.spec import NAMED_SUITES, SuiteSpec, load_suite, restrict, seeds_from_option


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddkd-suite",
        description=f"Run a suite of trainings ({', '.join(NAMED_SUITES)} or a YAML file) and print its table. "
        f"`ddkd-suite report SUITE` prints the table only. KEY VALUE pairs override config keys of every run.",
    )
    parser.add_argument("suite", help=f"a named suite ({', '.join(NAMED_SUITES)}) or a suite YAML file")
    parser.add_argument("--dry-run", action="store_true", help="print one training command per run and exit")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1); one GPU each when there are GPUs")
    parser.add_argument("--gpus", default=None, help="GPU ids to use, e.g. 0,1,2,3 (default: all visible)")
    parser.add_argument("--seeds", default=None, help="number of seeds (3 = seeds 0,1,2) or a list (0,4,7); "
                        "default: the suite's")
    parser.add_argument("--methods", default=None, help="comma-separated methods to run (default: the suite's)")
    parser.add_argument("--pairs", default=None, help="comma-separated pairs (res56_res20 or teacher:student)")
    parser.add_argument("--output", default=None, help="LOG.PREFIX of the runs (default: output/suites)")
    parser.add_argument("--launcher", default=None, help="what runs `-m mdistiller_ddkd.cli.train` "
                        "(default: this python), e.g. 'torchrun --nproc_per_node 8'")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    parser.add_argument("--no-report", action="store_true", help="do not print the table at the end")
    parser.add_argument("--metric", choices=("best", "last"), default="best", help="accuracy in the final table")
    parser.add_argument("opts", nargs="*", metavar="KEY VALUE", help="config overrides for every run")
    return parser


def _spec_from_args(args) -> SuiteSpec:
    spec = load_suite(args.suite)
    return restrict(
        spec,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None,
        pairs=[p.strip() for p in args.pairs.split(",") if p.strip()] if args.pairs else None,
        seeds=seeds_from_option(args.seeds) if args.seeds else None,
    )


def print_report(spec: SuiteSpec, output: Optional[str], metric: str = "best", fmt: str = "markdown",
                 topk: int = 1) -> str:
    """The table of a suite's output folder, rows and columns in the suite's order."""
    import os

    from ..suite.report import suite_report

    root = os.path.join(output or spec.output, spec.name)
    text = suite_report([root] if os.path.isdir(root) else [], metric=metric, topk=topk, fmt=fmt,
                        pairs=[(p.teacher, p.student) for p in spec.pairs], dataset=spec.dataset,
                        methods=spec.methods)
    print(text, flush=True)
    return text


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        from .table import main as table_main

        return table_main(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("--")]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.opts = list(args.opts) + extra
    try:
        spec = _spec_from_args(args)
        if len(args.opts) % 2:
            raise ValueError(f"config overrides must be KEY VALUE pairs, got {args.opts}")
        from ..suite.plan import plan_suite, shell_command

        plan = plan_suite(spec, args.opts, args.output)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    launcher = shlex.split(args.launcher) if args.launcher else None
    problems = plan.problems()
    if args.dry_run:
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        staged = any(run.after for run in plan.runs)
        header = None
        for run in plan.runs:
            stage = "# 2) after the teachers above have finished:" if run.after else "# 1) first:"
            if staged and stage != header:
                print(stage)
                header = stage
            print(shell_command(run, launcher))
        return 0
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        print("(nothing was started; `--dry-run` prints the commands anyway)", file=sys.stderr)
        return 2
    n_methods, n_pairs, n_seeds = len(spec.methods), len(spec.pairs), len(spec.seeds)
    print(f"suite {spec.name}: {len(plan.runs)} runs ({n_methods} methods x {n_pairs} pairs x {n_seeds} seeds"
          f"{', teachers trained first' if spec.teacher_config else ''}) -> "
          f"{plan.runs[0].output_dir.rsplit(plan.runs[0].name, 1)[0] if plan.runs else ''}", flush=True)
    if not _prefetch_teachers(plan):
        return 2
    from ..suite.execute import execute_plan

    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    try:
        outcome = execute_plan(plan, jobs=args.jobs, gpus=gpus, launcher=launcher, epoch_progress=not args.quiet)
    except KeyboardInterrupt:
        return 130
    if not args.no_report:
        print()
        print_report(spec, args.output, args.metric)
    return 0 if outcome.ok else 1


def _prefetch_teachers(plan) -> bool:
    """CIFAR-100 suites distilling from mdistiller's released teachers: fetch them once, before N runs
    would each try; False (with the message) when that fails."""
    needs = [r for r in plan.runs if r.role == "distill" and "DISTILLER.TEACHER_CKPT" not in r.overrides
             and r.status() != "finished"]
    if plan.suite.dataset != "cifar100" or not needs:
        return True
    from ..download import ensure_cifar_teachers

    try:
        ensure_cifar_teachers("download_ckpts")
    except Exception as err:  # offline, unreachable or corrupt: the message says what to do
        print(f"error: {err}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
