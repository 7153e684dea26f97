"""From a suite to runs: one output folder and one training command per (method, pair, seed).

Folders: ``<output>/<suite>/<run name>`` (``LOG.PREFIX``, ``EXPERIMENT.PROJECT``, ``EXPERIMENT.NAME``; the
W&B group ``LOG.WANDB_GROUP`` is the suite's name);
names are ``<method>-<pair>-s<seed>`` (a sweep's runs ``<method>-<pair>-<KEY>=<value>-s<seed>``,
suite/sweep.py), ``none-<model>-s<seed>`` for a model trained alone (shared by the pairs with the same
student) and ``teacher-<model>-s<seed>`` for a teacher the suite trains itself.
A folder whose ``results.json`` says finished is skipped; one with a ``latest`` checkpoint is resumed.
In a suite with ``skip_missing`` (the ``mdistiller`` suite), a run whose config file does not exist is
not planned but listed as not runnable, with the reason.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from ..configs_path import list_packaged_configs
from ..distillers import distiller_dict
from ..engine.cfg import resolve_config_path
from ..errors import ConfigError
from ..results_file import read_results
from . import sweep
from .spec import Pair, SuiteSpec
from .sweep import Point

TRAIN_MODULE = "mdistiller_ddkd.cli.train"


@dataclass
class Run:
    name: str
    method: str
    pair: Pair
    seed: int
    model: str  #: the network this run trains
    config: str
    overrides: List[str]
    output_dir: str
    #: names of runs that must finish first (a teacher the suite trains)
    after: List[str] = field(default_factory=list)
    role: str = "distill"  #: distill | student (NONE) | teacher
    #: plugin modules the training process imports first (its ``--plugins``)
    plugins: List[str] = field(default_factory=list)
    #: the sweep's values of this run (``suite.sweep``), empty when it is not swept
    point: Dict[str, str] = field(default_factory=dict)

    def status(self) -> str:
        """``finished``, ``resume`` (a ``latest`` checkpoint, unfinished) or ``new``."""
        results = read_results(self.output_dir)
        if results is not None and results.get("finished"):
            return "finished"
        if os.path.isfile(os.path.join(self.output_dir, "latest")):
            return "resume"
        return "new"

    def command(self, launcher: Optional[Sequence[str]] = None, resume: Optional[bool] = None) -> List[str]:
        """The training command (``--resume`` when the folder holds an unfinished run)."""
        if resume is None:
            resume = self.status() == "resume"
        prefix = list(launcher) if launcher else [sys.executable]
        return [*prefix, "-m", TRAIN_MODULE, "--cfg", self.config, *(["--resume"] if resume else []),
                *(["--plugins", ",".join(self.plugins)] if self.plugins else []), *self.overrides]

    def label(self) -> str:
        swept = "".join(f" {key}={value}" for key, value in self.point.items())
        if self.role == "distill":
            return f"{self.method} {self.pair.teacher}->{self.pair.student}{swept} seed {self.seed}"
        return f"{self.method} {self.model}{' (teacher)' if self.role == 'teacher' else ''}{swept} seed {self.seed}"


@dataclass(frozen=True)
class NotRunnable:
    """A (method, pair) of a ``skip_missing`` suite that is not planned (for every seed), and why."""

    method: str
    pair: Pair
    model: str
    config: str
    reason: str

    def label(self) -> str:
        if self.method == "NONE":
            return f"NONE {self.model}"
        return f"{self.method} {self.pair.teacher}->{self.pair.student}"


@dataclass
class Plan:
    suite: SuiteSpec
    runs: List[Run]
    #: config files that do not exist (relative names as the suite asks for them) -> runs needing them
    missing_configs: Dict[str, List[str]]
    #: methods the suite lists that no distiller implements (yet)
    unknown_methods: List[str]
    #: what a ``skip_missing`` suite leaves out, one entry per config file it lacks
    not_runnable: List[NotRunnable] = field(default_factory=list)
    #: the suite's output folder, ``<output>/<suite name>``: its runs' folders and its records
    root: str = ""

    def problems(self) -> List[str]:
        """Human-readable reasons why the plan cannot run (empty when it can)."""
        out = []
        if self.missing_configs:
            lines = [f"  {path}  (needed by {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''})"
                     for path, runs in sorted(self.missing_configs.items())]
            out.append(f"suite {self.suite.name!r}: {len(self.missing_configs)} config file(s) missing:\n"
                       + "\n".join(lines))
        if self.unknown_methods:
            out.append(f"suite {self.suite.name!r}: method(s) {', '.join(self.unknown_methods)} not registered "
                       f"(registered: {', '.join(distiller_dict.names())})")
        return out

    def not_runnable_lines(self) -> List[str]:
        """``# not runnable ...`` comment lines (shell-script safe) naming each left-out (method, pair)."""
        if not self.not_runnable:
            return []
        head = (f"# not runnable: {len(self.not_runnable)} (method, pair) of suite {self.suite.name} "
                f"without a config file")
        groups: Dict[tuple, List[NotRunnable]] = {}  # a method without any config folder: one line
        for item in self.not_runnable:
            groups.setdefault((item.method, item.reason), []).append(item)
        lines = [head]
        for (method, reason), items in groups.items():
            if len(items) == 1:
                lines.append(f"#   {items[0].label()}: {reason}")
            else:
                where = ("every pair" if len(items) == len(self.suite.pairs)
                         else ", ".join(i.pair.name if method != "NONE" else i.model for i in items))
                lines.append(f"#   {method} on {where} ({len(items)}): {reason}")
        return lines


def log_tail(path: str, lines: int) -> str:
    """The last ``lines`` lines of a log file ("" when it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def _fill(template: str, method: str, pair: Pair, model: str) -> str:
    try:
        return template.format(method=method.lower(), METHOD=method.upper(), pair=pair.name, teacher=pair.teacher,
                               student=pair.student, model=model)
    except (KeyError, IndexError) as err:
        raise ConfigError(f"config template {template!r}: unknown field {err}") from None


def _config_exists(path: str) -> bool:

    try:
        resolve_config_path(path)
        return True
    except FileNotFoundError:
        return False


def missing_config_reason(config: str, packaged: Sequence[str]) -> str:
    """Why a config file a suite asks for is absent: the method's folder exists (so it ships configs for
    other pairs: it cannot serve this one, or the file is not written yet) or not at all."""
    folder = os.path.dirname(config).replace("\\", "/").rstrip("/")
    if os.path.isdir(folder) or any(c.startswith(folder + "/") for c in packaged):
        return (f"{config} does not exist: the method has configs for other pairs but none for this one "
                f"(it cannot serve the pair, or its config is not written yet)")
    return f"{folder}/ does not exist: the method ships no configs for this dataset yet"


class _Planner:
    """Collects the runs of one suite: common overrides, one run per name, missing configs noted."""

    def __init__(self, spec: SuiteSpec, extra_overrides: Sequence[str], output: Optional[str],
                 plugins: Sequence[str]) -> None:
        self.spec, self.extra, self.plugins = spec, list(extra_overrides), list(plugins)
        self.prefix = output or spec.output
        self.runs: List[Run] = []
        self.by_name: Dict[str, Run] = {}
        self.missing: Dict[str, List[str]] = {}
        self.not_runnable: Dict[str, NotRunnable] = {}
        self._packaged: Optional[List[str]] = None

    def add(self, name: str, method: str, pair: Pair, seed: int, model: str, config: str, role: str,
            specific: List[str], after: Optional[List[str]] = None, point: Optional[Point] = None) -> Optional[Run]:
        """The run called ``name`` (planned once); None when a ``skip_missing`` suite lacks its config."""
        if name in self.by_name:
            return self.by_name[name]
        if not _config_exists(config):
            if self.spec.skip_missing and role != "teacher":
                self._leave_out(method, pair, model, config)
                return None
            self.missing.setdefault(config, []).append(name)
        spec = self.spec
        overrides = [*spec.overrides, *spec.method_overrides.get(method, []), *self.extra, *specific,
                     "EXPERIMENT.SEED", str(seed), "LOG.PREFIX", self.prefix, "EXPERIMENT.PROJECT", spec.name,
                     "EXPERIMENT.NAME", name, "LOG.WANDB_GROUP", spec.name]
        run = Run(name, method, pair, seed, model, config, overrides, os.path.join(self.prefix, spec.name, name),
                  list(after or []), role, list(self.plugins), dict(point or {}))
        self.runs.append(run)
        self.by_name[name] = run
        return run

    def _leave_out(self, method: str, pair: Pair, model: str, config: str) -> None:
        if config not in self.not_runnable:
            if self._packaged is None:
                self._packaged = list_packaged_configs()
            self.not_runnable[config] = NotRunnable(method, pair, model, config,
                                                    missing_config_reason(config, self._packaged))

    def teachers(self) -> Dict[str, Run]:
        """The teacher runs of a suite that trains its teachers (``teacher_config``), by teacher name."""
        spec, teachers = self.spec, {}
        if spec.teacher_config:
            seed = spec.seeds[0]
            for pair in spec.pairs:
                if pair.teacher not in teachers:
                    teachers[pair.teacher] = self.add(
                        f"teacher-{pair.teacher}-s{seed}", "NONE", pair, seed, pair.teacher,
                        _fill(spec.teacher_config, "NONE", pair, pair.teacher), "teacher",
                        ["DISTILLER.TYPE", "NONE", "DISTILLER.STUDENT", pair.teacher])
        return teachers

    def add_method(self, method: str, pair: Pair, seed: int, teachers: Dict[str, Run], point: Point) -> None:
        """The run of ``method`` on ``pair`` at a sweep's ``point`` (NONE: the student alone, shared by the pairs
        with that student)."""
        swept = sweep.name_part(point)
        if method == "NONE":
            self.add(f"none-{pair.student}{swept}-s{seed}", method, pair, seed, pair.student,
                     _fill(self.spec.vanilla_config, method, pair, pair.student), "student",
                     ["DISTILLER.TYPE", "NONE", "DISTILLER.STUDENT", pair.student, *sweep.overrides(point)],
                     point=point)
            return
        specific = ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", pair.teacher, "DISTILLER.STUDENT", pair.student,
                    *sweep.overrides(point)]
        after = []
        if pair.teacher in teachers:
            teacher = teachers[pair.teacher]
            specific += ["DISTILLER.TEACHER_CKPT", os.path.join(teacher.output_dir, "student_best")]
            after = [teacher.name]
        self.add(f"{method.lower()}-{pair.name}{swept}-s{seed}", method, pair, seed, pair.student,
                 _fill(self.spec.config, method, pair, pair.student), "distill", specific, after, point)


def plan_suite(spec: SuiteSpec, extra_overrides: Sequence[str] = (), output: Optional[str] = None,
               plugins: Sequence[str] = ()) -> Plan:
    """Every run of ``spec`` in execution order (teachers first), with missing configs and methods noted.

    ``extra_overrides`` (KEY VALUE ...) apply to every run after the suite's own; the folder keys
    (``LOG.PREFIX``, ``EXPERIMENT.PROJECT/NAME``) and ``EXPERIMENT.SEED`` are always the suite's. Methods
    are checked against the distiller registry (so plugins' methods count once ``plugins`` are loaded);
    ``plugins`` are also passed on to every training command.
    """

    planner = _Planner(spec, extra_overrides, output, plugins)
    teachers = planner.teachers()
    for pair in spec.pairs:
        for method in spec.methods:
            for point in sweep.grid(spec.sweep, spec.method_sweep.get(method)):
                for seed in spec.seeds:
                    planner.add_method(method, pair, seed, teachers, point)
    unknown = [m for m in spec.methods if m not in distiller_dict]
    return Plan(spec, planner.runs, planner.missing, unknown, list(planner.not_runnable.values()),
                os.path.join(planner.prefix, spec.name))


def shell_command(run: Run, launcher: Optional[Sequence[str]] = None) -> str:
    """One line of a shell script / scheduler job for ``run``."""
    return shlex.join(run.command(launcher))
