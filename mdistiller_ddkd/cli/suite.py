"""``tools/suite.py`` / ``ddkd-suite``: run a whole table — methods x teacher/student pairs x seeds.

    python tools/suite.py demo                               # offline demo (synthetic data), then its table
    python tools/suite.py table2 --dry-run                   # one training command per run
    python tools/suite.py table2 --jobs 8                    # 8 runs at a time, one GPU each
    python tools/suite.py mdistiller --dry-run               # every registered method x the 11 CIFAR pairs
    python tools/suite.py my_suite.yaml --seeds 1 SOLVER.EPOCHS 2
    python tools/suite.py run table2 --plugins my_methods    # `run` is the default subcommand
    python tools/suite.py report table2 [--metric last]      # the table of a suite's output folders

Finished runs are skipped and interrupted ones resumed, so a suite can be restarted at any time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import List, Optional

from ..plugins import PluginError, add_plugins_argument, plugins_from_args, split_modules
from ..suite.spec import NAMED_SUITES, SuiteSpec, load_suite, restrict, seeds_from_option
from ..errors import OneLineArgumentParser, one_line, run_main

SUBCOMMANDS = ("run", "report")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", help=f"a named suite ({', '.join(NAMED_SUITES)}) or a suite YAML file")
    parser.add_argument("--dry-run", action="store_true", help="print one training command per run and exit")
    parser.add_argument("--jobs", type=int, default=None, help="runs at a time (default: the suite's, 1 for most, "
                        "2 for the demo; fewer when --threads x jobs would exceed the cores); one GPU each when there "
                        "are GPUs")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of each run (default: "
                        "OMP_NUM_THREADS when set, else the cores / jobs)")
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
    add_plugins_argument(parser)
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE", help="config overrides for every run")


def build_parser() -> argparse.ArgumentParser:
    """``ddkd-suite {run,report} ...``; a first argument that is not a subcommand means ``run``."""
    from .table import add_table_arguments

    parser = OneLineArgumentParser(
        prog="ddkd-suite",
        description=f"Run a suite of trainings ({', '.join(NAMED_SUITES)} or a YAML file) and print its table "
        f"(`ddkd-suite [run] SUITE`), or print the table only (`ddkd-suite report SUITE`).",
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,report}", parser_class=OneLineArgumentParser)
    run = commands.add_parser("run", help="run a suite (the default: `ddkd-suite SUITE` means `ddkd-suite run SUITE`)",
                              description="Run a suite's trainings and print its table. KEY VALUE pairs override "
                              "config keys of every run.")
    _add_run_arguments(run)
    report = commands.add_parser("report", help="print the table of a suite's output folders (as ddkd-table)",
                                 description="Tabulate a suite's run folders like the paper.")
    add_table_arguments(report)
    parser.commands = {"run": run, "report": report}  # for their own usage line in error messages
    return parser


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parsed arguments; KEY VALUE overrides after options are gathered into ``opts`` (``run``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*SUBCOMMANDS, "-h", "--help"):
        argv = ["run", *argv]
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    unknown = [a for a in extra if a.startswith("--")] if args.command == "run" else extra
    if unknown:
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run":
        args.opts = list(args.opts) + extra
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point: errors are one line with exit code 2 (``--debug`` shows the traceback)."""
    return run_main(_main, argv)


def _main(argv: List[str]) -> int:
    args = parse_args(argv)
    if args.command == "report":
        from .table import run_table

        return run_table(args)
    return run_suite(args)


def _spec_from_args(args) -> SuiteSpec:
    spec = load_suite(args.suite)
    return restrict(
        spec,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None,
        pairs=[p.strip() for p in args.pairs.split(",") if p.strip()] if args.pairs else None,
        seeds=seeds_from_option(args.seeds) if args.seeds else None,
    )


def _plan_from_args(args):
    """The plan (plugins loaded first, so their methods and datasets are known); raises user errors."""
    plugins_from_args(args)
    spec = _spec_from_args(args)
    if len(args.opts) % 2:
        raise ValueError(f"config overrides must be KEY VALUE pairs, got {args.opts}")
    for option in ("jobs", "threads"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise ValueError(f"--{option} must be at least 1, got {getattr(args, option)}")
    from ..suite.plan import plan_suite

    return plan_suite(spec, args.opts, args.output, plugins=split_modules(args.plugins))


def print_report(spec: SuiteSpec, output: Optional[str], metric: str = "best", fmt: str = "markdown",
                 topk: int = 1) -> str:
    """The table of a suite's output folder, rows and columns in the suite's order."""
    from ..suite.report import suite_report

    root = os.path.join(output or spec.output, spec.name)
    text = suite_report([root] if os.path.isdir(root) else [], metric=metric, topk=topk, fmt=fmt,
                        pairs=[(p.teacher, p.student) for p in spec.pairs], dataset=spec.dataset,
                        methods=spec.methods)
    print(text, flush=True)
    return text


def print_dry_run(plan, launcher: Optional[List[str]]) -> None:
    """One shell line per run (teachers first, in stages when the suite trains them), then the
    (method, pair) left out as ``#`` comments; the plan's problems as warnings on stderr."""
    from ..suite.plan import shell_command

    for problem in plan.problems():
        print(f"warning: {problem}", file=sys.stderr)
    staged = any(run.after for run in plan.runs)
    header = None
    for run in plan.runs:
        stage = "# 2) after the teachers above have finished:" if run.after else "# 1) first:"
        if staged and stage != header:
            print(stage)
            header = stage
        print(shell_command(run, launcher))
    for line in plan.not_runnable_lines():
        print(line)


def run_suite(args: argparse.Namespace) -> int:
    """``ddkd-suite run``: plan, then print the commands (``--dry-run``) or run them and print the table."""
    try:
        plan = _plan_from_args(args)
    except (FileNotFoundError, ValueError, KeyError, PluginError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {one_line(message)}", file=sys.stderr)
        return 2
    launcher = shlex.split(args.launcher) if args.launcher else None
    if args.dry_run:
        print_dry_run(plan, launcher)
        return 0
    problems = plan.problems()
    if problems:
        for problem in problems:
            print(f"error: {one_line(problem)}", file=sys.stderr)
        print("(nothing was started; `--dry-run` prints the commands anyway)", file=sys.stderr)
        return 2
    spec = plan.suite
    for line in plan.not_runnable_lines():
        print(line, flush=True)
    print(f"suite {spec.name}: {len(plan.runs)} runs ({len(spec.methods)} methods x {len(spec.pairs)} pairs x "
          f"{len(spec.seeds)} seeds{', teachers trained first' if spec.teacher_config else ''}"
          f"{f', {len(plan.not_runnable)} (method, pair) not runnable' if plan.not_runnable else ''}) -> "
          f"{plan.runs[0].output_dir.rsplit(plan.runs[0].name, 1)[0] if plan.runs else ''}", flush=True)
    if not _prefetch_teachers(plan):
        return 2
    from ..suite.execute import execute_plan, write_manifest

    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    jobs, threads = jobs_and_threads(spec, args.jobs, args.threads, gpus)
    print(f"{jobs} run(s) at a time{f', {threads} CPU thread(s) each' if threads else ''}", flush=True)
    try:
        outcome = execute_plan(plan, jobs=jobs, gpus=gpus, launcher=launcher, epoch_progress=not args.quiet,
                               threads=threads)
    except KeyboardInterrupt:
        return 130
    write_manifest(plan, outcome, jobs)
    if not args.no_report:
        print()
        print_report(spec, args.output, args.metric)
    if spec.plots:
        _write_suite_plots(spec, args.output, args.metric)
    return 0 if outcome.ok else 1


def jobs_and_threads(spec: SuiteSpec, jobs: Optional[int], threads: Optional[int],
                     gpus: Optional[List[str]] = None):
    """``(runs at a time, CPU threads per run or None on GPUs)``. Without ``--jobs`` the suite's own number,
    lowered so that jobs x threads fit the cores when the threads are given (``--threads`` or
    ``OMP_NUM_THREADS``): ``OMP_NUM_THREADS=2 ddkd-suite demo`` runs one 2-thread run at a time on 2 cores."""
    from ..suite.execute import available_cores, detect_gpus, env_threads, threads_per_run

    on_gpus = bool(gpus if gpus is not None else detect_gpus())
    given = threads or env_threads()
    if jobs is None:
        jobs = spec.jobs if on_gpus or given is None else max(1, min(spec.jobs, available_cores() // given))
    return jobs, None if on_gpus else threads_per_run(jobs, threads)


def _write_suite_plots(spec: SuiteSpec, output: Optional[str], metric: str) -> None:
    """The plots a suite asks for (the demo's) in ``<output>/<name>/plots``; without matplotlib, the hint."""
    from .table import write_plots

    root = os.path.join(output or spec.output, spec.name)
    try:
        write_plots([root], os.path.join(root, "plots"), metric,
                    pairs=[(p.teacher, p.student) for p in spec.pairs])
    except ImportError as err:  # matplotlib is optional
        print(f"[mdistiller_ddkd] no plots: {one_line(err)}", flush=True)


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
        print(f"error: {one_line(err)}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
