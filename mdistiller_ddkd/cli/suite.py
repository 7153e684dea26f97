"""``tools/suite.py`` / ``ddkd-suite``: run a whole table — methods x teacher/student pairs x seeds.

    python tools/suite.py demo                               # offline demo (synthetic data), then its table
    python tools/suite.py table2 --dry-run                   # one training command per run
    python tools/suite.py table2 --jobs 8                    # 8 runs at a time, one GPU each
    python tools/suite.py mdistiller --dry-run               # every registered method x the 11 CIFAR pairs
    python tools/suite.py my_suite.yaml --seeds 1 SOLVER.EPOCHS 2
    python tools/suite.py demo_dkd_beta                      # a shipped sweep: DKD's β on the demo
    python tools/suite.py run table2 --plugins my_methods    # `run` is the default subcommand
    python tools/suite.py report table2 [--metric last]      # the table of a suite's output folders
    python tools/suite.py table2 --slurm --partition gpu     # one Slurm job per run (docs/cluster.md)
    python tools/suite.py status table2                      # where each run stands (local or Slurm)

Finished runs are skipped and interrupted ones resumed, so a suite can be restarted (or submitted) again at
any time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import List, Optional

from ..download import ensure_cifar_teachers
from ..errors import ConfigError, ExitCode
from ..plugins import add_plugins_argument, plugins_from_args, split_modules
from ..suite.executors import Executor, LocalExecutor, SlurmExecutor
from ..suite.machine import detect_gpus, jobs_and_threads
from ..suite.plan import plan_suite
from ..suite.slurm import DEFAULT_SIGNAL_LEAD, SlurmOptions
from ..suite.spec import NAMED_SUITES, SuiteSpec, load_suite, restrict, seeds_from_option
from ..suite.status import render_status, suite_status
from ..suite.sweep import expected_columns
from ..suite.table_formats import suite_report
from .runner import OneLineArgumentParser, one_line, run_main
from .table import add_table_arguments, run_table, write_plots

SUBCOMMANDS = ("run", "report", "status")


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    _add_selection_arguments(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print one training command (--slurm: one job script) per run and exit")
    parser.add_argument("--jobs", type=int, default=None, help="runs at a time (default: the suite's, 1 for most, "
                        "2 for the demo; fewer when --threads x jobs would exceed the cores); one GPU each when there "
                        "are GPUs")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads of each run (default: "
                        "OMP_NUM_THREADS when set, else the cores / jobs)")
    parser.add_argument("--gpus", default=None, help="GPU ids to use, e.g. 0,1,2,3 (default: all visible)")
    parser.add_argument("--launcher", default=None, help="what runs `-m mdistiller_ddkd.cli.train` "
                        "(default: this python), e.g. 'torchrun --nproc_per_node 8'")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    parser.add_argument("--no-report", action="store_true", help="do not print the table at the end")
    parser.add_argument("--metric", choices=("best", "last"), default="best", help="accuracy in the final table")
    _add_slurm_arguments(parser)
    add_plugins_argument(parser)
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE", help="config overrides for every run")


def _add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", help=f"a named suite ({', '.join(NAMED_SUITES)}) or a suite YAML file")
    parser.add_argument("--seeds", default=None, help="number of seeds (3 = seeds 0,1,2) or a list (0,4,7); "
                        "default: the suite's")
    parser.add_argument("--methods", default=None, help="comma-separated methods to run (default: the suite's)")
    parser.add_argument("--pairs", default=None, help="comma-separated pairs (res56_res20 or teacher:student)")
    parser.add_argument("--output", default=None, help="LOG.PREFIX of the runs (default: output/suites)")


def _add_slurm_arguments(parser: argparse.ArgumentParser) -> None:
    """Slurm resources per run (they override the suite file's ``slurm:`` node; docs/cluster.md)."""
    group = parser.add_argument_group("Slurm (--slurm: one job per run instead of local processes)")
    group.add_argument("--slurm", action="store_true", help="submit one Slurm job per unfinished run and return")
    group.add_argument("--partition", default=None, help="partition of the jobs (default: the cluster's default)")
    group.add_argument("--gpus-per-run", type=int, default=None,
                       help="GPUs per run (default 1 where the cluster has GPUs, else 0); more than 1: torchrun")
    group.add_argument("--cpus-per-run", type=int, default=None, help="CPUs per run (default 4; sets the threads)")
    group.add_argument("--mem-per-run", default=None, help="memory per run (default 16G), always requested")
    group.add_argument("--time", default=None, help="time limit per job (default 24:00:00); a job that reaches "
                       "it checkpoints, requeues itself and continues")
    group.add_argument("--account", default=None, help="Slurm account")
    group.add_argument("--qos", default=None, help="Slurm QOS")
    group.add_argument("--max-running", type=int, default=None, help="at most this many of the suite's jobs at once")
    group.add_argument("--sbatch", action="append", default=[], metavar="OPTION",
                       help="an extra #SBATCH option, e.g. --sbatch=--constraint=a100 (repeatable)")
    group.add_argument("--signal-lead", type=int, default=None,
                       help=f"seconds before the time limit at which a job checkpoints (default {DEFAULT_SIGNAL_LEAD})")
    group.add_argument("--max-requeues", type=int, default=None,
                       help="starts in a row without a new epoch before a run is stopped as failed (default 3)")


def build_parser() -> argparse.ArgumentParser:
    """``ddkd-suite {run,report} ...``; a first argument that is not a subcommand means ``run``."""

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
    status = commands.add_parser("status", help="one line per run: pending, running, requeued, done, failed",
                                 description="Where each run of a suite stands (local or Slurm), and the totals.")
    _add_selection_arguments(status)
    add_plugins_argument(status)
    parser.commands = {"run": run, "report": report, "status": status}  # for their usage line in errors
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
        return run_table(args)
    if args.command == "status":
        return show_status(args)
    return run_suite(args)


def show_status(args: argparse.Namespace) -> int:
    """``ddkd-suite status``: where each run stands; ``ExitCode.RUNS_FAILED`` when a run failed."""
    plugins_from_args(args)
    plan = plan_suite(_spec_from_args(args), (), args.output)
    statuses = suite_status(plan)
    print(render_status(statuses, plan.suite.name), flush=True)
    return ExitCode.RUNS_FAILED if any(s.state == "failed" for s in statuses) else ExitCode.DONE


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
        raise ConfigError(f"config overrides must be KEY VALUE pairs, got {args.opts}")
    for option in ("jobs", "threads"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise ConfigError(f"--{option} must be at least 1, got {getattr(args, option)}")

    return plan_suite(spec, args.opts, args.output, plugins=split_modules(args.plugins))


def print_report(spec: SuiteSpec, output: Optional[str], metric: str = "best", fmt: str = "markdown",
                 topk: int = 1) -> str:
    """The table of a suite's output folder, rows and columns in the suite's order."""

    root = os.path.join(output or spec.output, spec.name)
    text = suite_report([root] if os.path.isdir(root) else [], metric=metric, topk=topk, fmt=fmt,
                        pairs=[(p.teacher, p.student) for p in spec.pairs], dataset=spec.dataset,
                        methods=expected_columns(spec.methods, spec.sweep, spec.method_sweep))
    print(text, flush=True)
    return text


def _executor(args: argparse.Namespace, spec: SuiteSpec) -> Executor:
    """Local processes, or Slurm jobs (``--slurm``; resources from the suite file, then the options)."""
    if args.slurm:
        options = SlurmOptions.from_dict(spec.slurm).merged(
            partition=args.partition, gpus=args.gpus_per_run, cpus=args.cpus_per_run, mem=args.mem_per_run,
            time=args.time, account=args.account, qos=args.qos, max_running=args.max_running, extra=args.sbatch,
            signal_lead=args.signal_lead, max_requeues=args.max_requeues)
        return SlurmExecutor(options)
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else detect_gpus()
    launcher = shlex.split(args.launcher) if args.launcher else None
    jobs, threads = jobs_and_threads(spec.jobs, args.jobs, args.threads, gpus)
    return LocalExecutor(jobs=jobs, gpus=gpus, launcher=launcher, epoch_progress=not args.quiet, threads=threads)


def run_suite(args: argparse.Namespace) -> int:
    """``ddkd-suite run``: plan, then print the commands (``--dry-run``), run them locally and print the table,
    or submit them to Slurm (``--slurm``)."""
    plan = _plan_from_args(args)
    executor = _executor(args, plan.suite)
    if args.dry_run:
        for problem in plan.problems():
            print(f"warning: {problem}", file=sys.stderr)
        executor.dry_run(plan)
        return 0
    problems = plan.problems()
    if problems:
        raise ConfigError("; ".join(problems) + " (nothing was started; `--dry-run` prints the commands anyway)")
    spec = plan.suite
    for line in plan.not_runnable_lines():
        print(line, flush=True)
    print(f"suite {spec.name}: {len(plan.runs)} runs ({len(spec.methods)} methods x {len(spec.pairs)} pairs x "
          f"{len(spec.seeds)} seeds{' x swept values' if spec.sweep or spec.method_sweep else ''}"
          f"{', teachers trained first' if spec.teacher_config else ''}"
          f"{f', {len(plan.not_runnable)} (method, pair) not runnable' if plan.not_runnable else ''}) -> "
          f"{plan.root}", flush=True)
    _prefetch_teachers(plan)
    if isinstance(executor, SlurmExecutor):
        executor.execute(plan)
        where = f" --output {args.output}" if args.output else ""
        print(f"follow with `ddkd-suite status {args.suite}{where}`; when the runs are done, "
              f"`ddkd-suite report {args.suite}{where}` prints the table", flush=True)
        return 0
    print(f"{executor.jobs} run(s) at a time"
          f"{f', {executor.threads} CPU thread(s) each' if executor.threads else ''}", flush=True)
    try:
        ok = executor.execute(plan)
    except KeyboardInterrupt:
        return ExitCode.SIGINT
    if not args.no_report:
        print()
        print_report(spec, args.output, args.metric)
    if spec.plots:
        _write_suite_plots(spec, args.output, args.metric)
    return ExitCode.DONE if ok else ExitCode.RUNS_FAILED


def _write_suite_plots(spec: SuiteSpec, output: Optional[str], metric: str) -> None:
    """The plots a suite asks for (the demo's) in ``<output>/<name>/plots``; without matplotlib, the hint."""

    root = os.path.join(output or spec.output, spec.name)
    try:
        write_plots([root], os.path.join(root, "plots"), metric,
                    pairs=[(p.teacher, p.student) for p in spec.pairs])
    except ImportError as err:  # matplotlib is optional
        print(f"[mdistiller_ddkd] no plots: {one_line(err)}", flush=True)


def _prefetch_teachers(plan) -> None:
    """CIFAR-100 suites distilling from mdistiller's released teachers: fetch them once, before N runs (or
    jobs) would each try; offline, unreachable or corrupt is a one-line user error."""
    needs = [r for r in plan.runs if r.role == "distill" and "DISTILLER.TEACHER_CKPT" not in r.overrides
             and r.status() != "finished"]
    if plan.suite.dataset == "cifar100" and needs:
        ensure_cifar_teachers("download_ckpts")


if __name__ == "__main__":
    sys.exit(main())
