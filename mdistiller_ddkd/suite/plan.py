"""From a suite to runs: one output folder and one training command per (method, pair, seed).

Folders: ``<output>/<suite>/<run name>`` (``LOG.PREFIX``, ``EXPERIMENT.PROJECT``, ``EXPERIMENT.NAME``);
names are ``<method>-<pair>-s<seed>``, ``none-<model>-s<seed>`` for a model trained alone (shared by the
pairs with the same student) and ``teacher-<model>-s<seed>`` for a teacher the suite trains itself.
A folder whose ``results.json`` says finished is skipped; one with a ``latest`` checkpoint is resumed.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from .spec import Pair, SuiteSpec

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
                *self.overrides]

    def label(self) -> str:
        if self.role == "distill":
            return f"{self.method} {self.pair.teacher}->{self.pair.student} seed {self.seed}"
        return f"{self.method} {self.model}{' (teacher)' if self.role == 'teacher' else ''} seed {self.seed}"


@dataclass
class Plan:
    suite: SuiteSpec
    runs: List[Run]
    #: config files that do not exist (relative names as the suite asks for them) -> runs needing them
    missing_configs: Dict[str, List[str]]
    #: methods the suite lists that no distiller implements (yet)
    unknown_methods: List[str]

    def problems(self) -> List[str]:
        """Human-readable reasons why the plan cannot run (empty when it can)."""
        out = []
        if self.missing_configs:
            lines = [f"  {path}  (needed by {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''})"
                     for path, runs in sorted(self.missing_configs.items())]
            out.append(f"suite {self.suite.name!r}: {len(self.missing_configs)} config file(s) missing:\n"
                       + "\n".join(lines))
        if self.unknown_methods:
            from ..distillers import distiller_dict

            out.append(f"suite {self.suite.name!r}: method(s) {', '.join(self.unknown_methods)} not registered "
                       f"(registered: {', '.join(sorted(distiller_dict))})")
        return out


def read_results(output_dir: str) -> Optional[dict]:
    """``results.json`` of a run folder, or None when absent or unreadable (being rewritten)."""
    path = os.path.join(output_dir, "results.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _fill(template: str, method: str, pair: Pair, model: str) -> str:
    try:
        return template.format(method=method.lower(), METHOD=method.upper(), pair=pair.name, teacher=pair.teacher,
                               student=pair.student, model=model)
    except (KeyError, IndexError) as err:
        raise ValueError(f"config template {template!r}: unknown field {err}") from None


def _config_exists(path: str) -> bool:
    from ..engine.cfg import resolve_config_path

    try:
        resolve_config_path(path)
        return True
    except FileNotFoundError:
        return False


def plan_suite(spec: SuiteSpec, extra_overrides: Sequence[str] = (), output: Optional[str] = None) -> Plan:
    """Every run of ``spec`` in execution order (teachers first), with missing configs and methods noted.

    ``extra_overrides`` (KEY VALUE ...) apply to every run after the suite's own; the folder keys
    (``LOG.PREFIX``, ``EXPERIMENT.PROJECT/NAME``) and ``EXPERIMENT.SEED`` are always the suite's.
    """
    from ..distillers import distiller_dict

    prefix = output or spec.output
    runs: List[Run] = []
    by_name: Dict[str, Run] = {}
    missing: Dict[str, List[str]] = {}

    def add(name: str, method: str, pair: Pair, seed: int, model: str, config: str, role: str,
            specific: List[str], after: Optional[List[str]] = None) -> Run:
        if name in by_name:
            return by_name[name]
        overrides = [*spec.overrides, *spec.method_overrides.get(method, []), *extra_overrides, *specific,
                     "EXPERIMENT.SEED", str(seed), "LOG.PREFIX", prefix, "EXPERIMENT.PROJECT", spec.name,
                     "EXPERIMENT.NAME", name]
        run = Run(name, method, pair, seed, model, config, overrides, os.path.join(prefix, spec.name, name),
                  list(after or []), role)
        if not _config_exists(config):
            missing.setdefault(config, []).append(name)
        runs.append(run)
        by_name[name] = run
        return run

    teachers: Dict[str, Run] = {}
    if spec.teacher_config:
        teacher_seed = spec.seeds[0]
        for pair in spec.pairs:
            if pair.teacher not in teachers:
                config = _fill(spec.teacher_config, "NONE", pair, pair.teacher)
                teachers[pair.teacher] = add(f"teacher-{pair.teacher}-s{teacher_seed}", "NONE", pair, teacher_seed,
                                             pair.teacher, config, "teacher",
                                             ["DISTILLER.TYPE", "NONE", "DISTILLER.STUDENT", pair.teacher])
    for pair in spec.pairs:
        for method in spec.methods:
            for seed in spec.seeds:
                if method == "NONE":
                    config = _fill(spec.vanilla_config, method, pair, pair.student)
                    add(f"none-{pair.student}-s{seed}", method, pair, seed, pair.student, config, "student",
                        ["DISTILLER.TYPE", "NONE", "DISTILLER.STUDENT", pair.student])
                    continue
                specific = ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", pair.teacher,
                            "DISTILLER.STUDENT", pair.student]
                after = []
                if pair.teacher in teachers:
                    teacher = teachers[pair.teacher]
                    specific += ["DISTILLER.TEACHER_CKPT", os.path.join(teacher.output_dir, "student_best")]
                    after = [teacher.name]
                add(f"{method.lower()}-{pair.name}-s{seed}", method, pair, seed, pair.student,
                    _fill(spec.config, method, pair, pair.student), "distill", specific, after)
    unknown = [m for m in spec.methods if m not in distiller_dict]
    return Plan(spec, runs, missing, unknown)


def shell_command(run: Run, launcher: Optional[Sequence[str]] = None) -> str:
    """One line of a shell script / scheduler job for ``run``."""
    return shlex.join(run.command(launcher))
