"""What a suite is: methods x teacher/student pairs x seeds, with the config file of each run.

Named suites: ``table1`` (ImageNet), ``table2`` (CIFAR-100, same family), ``table3`` (CIFAR-100, cross
family) built from the paper's tables, ``mdistiller`` (every registered method x the eleven CIFAR-100
pairs; a (method, pair) without a config file is listed as not runnable), ``demo`` (the offline
synthetic demo) and the suite files shipped in ``mdistiller_ddkd/data/suites/`` (sweeps), by file name.
A YAML file describes a custom suite with the same fields::

    name: my_suite                 # output sub-folder (default: the file name)
    dataset: cifar100              # cifar100 | imagenet | synthetic (paper values are looked up by it)
    methods: [NONE, KD, DKD]
    pairs: [res56_res20, {teacher: vgg13, student: vgg8}, {name: mine, teacher: resnet20, student: resnet8}]
    seeds: [0, 1, 2]
    config: configs/cifar100/{method}/{pair}.yaml          # template of a method's config
    vanilla_config: configs/cifar100/vanilla/{model}.yaml  # NONE: the student alone (one run per model)
    teacher_config: null           # set: train each teacher first (method NONE) and distil from its student_best
    overrides: {SOLVER.EPOCHS: 2}  # or a flat list [KEY, VALUE, ...]; applied to every run
    method_overrides: {DKD: {DKD.WARMUP: 1}}
    sweep: {SOLVER.LR: [0.025, 0.05]}   # one run per value (several keys: every combination), for every method
    method_sweep: {DKD: {DKD.BETA: [1, 2, 4, 8]}}   # the same for one method (suite/sweep.py)
    output: output/suites          # LOG.PREFIX of the runs
    skip_missing: false            # true: runs without a config file are listed as not runnable, the rest run
    slurm: {partition: gpu, time: "24:00:00", mem: 16G, cpus: 4}   # job resources for --slurm (docs/cluster.md)
    jobs: 1                        # runs at a time unless --jobs says otherwise

Templates may use ``{method}`` (lower case), ``{METHOD}``, ``{pair}``, ``{teacher}``, ``{student}``
and, for the vanilla/teacher templates, ``{model}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence

import yaml

from ..distillers import distiller_dict
from ..errors import ConfigError, MissingInputError, UnknownNameError
from ..pairs import pairs_of
from ..registry import Registry
from .paper import PAIR_NAMES, PAPER_TABLES, pair_name, table_methods, table_rows
from .result_tables import method_order
from .sweep import Sweep, parse_sweep

DEFAULT_OUTPUT = os.path.join("output", "suites")


@dataclass(frozen=True)
class Pair:
    """A teacher/student pair and its config name (``res56_res20``)."""

    name: str
    teacher: str
    student: str


@dataclass
class SuiteSpec:
    name: str
    dataset: str
    methods: List[str]
    pairs: List[Pair]
    seeds: List[int]
    config: str
    vanilla_config: str
    teacher_config: Optional[str] = None
    overrides: List[str] = field(default_factory=list)
    method_overrides: Dict[str, List[str]] = field(default_factory=dict)
    output: str = DEFAULT_OUTPUT
    #: the paper table it reproduces (table1..table3), for the report's row order
    paper_table: Optional[str] = None
    #: runs whose config file does not exist are listed as not runnable instead of failing the plan
    skip_missing: bool = False
    #: write the suite's plots (``suite.suite_figures.plot_suite``) into ``<output>/<name>/plots`` after the run
    plots: bool = False
    #: resources of its Slurm jobs (``suite.slurm.SlurmOptions`` fields), from the suite file's ``slurm:`` node
    slurm: Dict[str, object] = field(default_factory=dict)
    #: runs at a time when ``--jobs`` is not given (on the CPU each run gets the cores / jobs threads)
    jobs: int = 1
    #: swept keys of every method's runs, and of one method's (``suite.sweep``): one run per point of the grid
    sweep: Sweep = field(default_factory=dict)
    method_sweep: Dict[str, Sweep] = field(default_factory=dict)


def _pair_from_name(name: str) -> Pair:
    for (teacher, student), known in PAIR_NAMES.items():
        if known == name:
            return Pair(name, teacher, student)
    raise UnknownNameError(f"unknown pair {name!r}; known: {', '.join(sorted(PAIR_NAMES.values()))} "
                     f"(or give {{teacher: ..., student: ...}})")


def parse_pair(item) -> Pair:
    """A pair from a config name (``res56_res20``), ``teacher:student`` or a dict with teacher/student[/name]."""
    if isinstance(item, Pair):
        return item
    if isinstance(item, str):
        if ":" in item:
            teacher, student = item.split(":", 1)
            return Pair(pair_name(teacher, student), teacher, student)
        return _pair_from_name(item)
    if isinstance(item, dict) and "teacher" in item and "student" in item:
        return Pair(str(item.get("name") or pair_name(item["teacher"], item["student"])), str(item["teacher"]),
                    str(item["student"]))
    raise ConfigError(f"a pair is a name, 'teacher:student' or {{teacher, student[, name]}}; got {item!r}")


def flatten_overrides(value) -> List[str]:
    """``{KEY: VALUE}`` or ``[KEY, VALUE, ...]`` as a flat list of strings (yacs' command-line form)."""
    if value is None:
        return []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        if len(value) % 2:
            raise ConfigError(f"overrides must be KEY VALUE pairs, got {list(value)}")
        items = list(zip(value[0::2], value[1::2]))
    else:
        raise ConfigError(f"overrides must be a mapping or a flat KEY VALUE list, got {value!r}")
    flat: List[str] = []
    for key, val in items:
        if isinstance(val, bool):
            val = "True" if val else "False"
        flat += [str(key), str(val) if not isinstance(val, (list, tuple)) else str(list(val))]
    return flat


def _paper_suite(table: str) -> SuiteSpec:
    key, dataset = PAPER_TABLES[table]
    pairs = [Pair(pair_name(r["teacher"], r["student"]), r["teacher"], r["student"]) for r in table_rows(table)]
    if dataset == "imagenet":  # mdistiller's ImageNet recipe: 8 GPUs per run (torchrun inside a Slurm job)
        return SuiteSpec(table, dataset, table_methods(table), pairs, seeds=[0],
                         config="configs/imagenet/{pair}/{method}.yaml",
                         vanilla_config="configs/imagenet/{pair}/none.yaml", paper_table=table,
                         slurm={"gpus": 8, "cpus": 32, "mem": "160G", "time": "2-00:00:00"})
    return SuiteSpec(table, dataset, table_methods(table), pairs, seeds=[0, 1, 2],
                     config="configs/cifar100/{method}/{pair}.yaml",
                     vanilla_config="configs/cifar100/vanilla/{model}.yaml", paper_table=table)


def demo_suite() -> SuiteSpec:
    """The offline demo: train resnet20 once on the synthetic data, then resnet8 alone and with KD, DKD, DDKD
    from that teacher, 3 seeds each (the seeds vary the students), two runs at a time. The methods are listed
    slowest first, so the two runs at a time end together (the table orders its columns itself)."""
    return SuiteSpec(
        "demo", "synthetic", ["NONE", "DDKD", "DKD", "KD"], [Pair("res20_res8", "resnet20", "resnet8")],
        seeds=[0, 1, 2], config="configs/demo/{method}.yaml", vanilla_config="configs/demo/none.yaml",
        teacher_config="configs/demo/teacher.yaml", plots=True, jobs=2,
    )


def registered_methods() -> List[str]:
    """Every method of the distiller registry now (plugins included): NONE first, then the paper's column
    order, then alphabetically."""

    return ["NONE", *method_order(set(distiller_dict) - {"NONE"})]


def mdistiller_suite() -> SuiteSpec:
    """Every registered method x the eleven CIFAR-100 pairs (``pairs.CIFAR_PAIRS``), with the shipped configs
    ``configs/cifar100/{method}/{pair}.yaml``; methods come from the registry when the suite is built, and a
    (method, pair) without a config file is listed as not runnable."""
    pairs = [Pair(name, teacher, student) for name, (teacher, student) in pairs_of("cifar100").items()]
    return SuiteSpec("mdistiller", "cifar100", registered_methods(), pairs, seeds=[0, 1, 2],
                     config="configs/cifar100/{method}/{pair}.yaml",
                     vanilla_config="configs/cifar100/vanilla/{model}.yaml", skip_missing=True)


#: the suite files shipped with the package (sweeps), named suites by their file name
SUITE_FILES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "suites")


def _shipped_suite_files() -> Dict[str, str]:
    names = sorted(os.listdir(SUITE_FILES)) if os.path.isdir(SUITE_FILES) else []
    return {os.path.splitext(n)[0]: os.path.join(SUITE_FILES, n) for n in names if n.endswith(".yaml")}


def _shipped_suite(path: str) -> SuiteSpec:
    return load_suite(path)


#: name -> builder of every named suite (built on demand: the paper's tables are read, the registry asked)
_NAMED_SUITE_BUILDERS: Registry[Callable[[], SuiteSpec]] = Registry("named suite")
for _name, _builder in [*((table, partial(_paper_suite, table)) for table in PAPER_TABLES),
                        ("mdistiller", mdistiller_suite), ("demo", demo_suite),
                        *((name, partial(_shipped_suite, path)) for name, path in _shipped_suite_files().items())]:
    _NAMED_SUITE_BUILDERS.register(_name, _builder)
NAMED_SUITES = tuple(_NAMED_SUITE_BUILDERS)


def named_suite(name: str) -> SuiteSpec:
    """A named suite (:data:`NAMED_SUITES`), built now; an unknown name lists the named suites."""
    return _NAMED_SUITE_BUILDERS.get(name)()


def suite_from_dict(data: dict, default_name: str = "suite") -> SuiteSpec:
    """A custom suite from the YAML fields documented in this module."""
    known = {"name", "dataset", "methods", "pairs", "seeds", "config", "vanilla_config", "teacher_config",
             "overrides", "method_overrides", "output", "base", "skip_missing", "slurm", "jobs",
             "sweep", "method_sweep"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown suite field(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(known))}")
    base = named_suite(data["base"]) if data.get("base") else None
    for required in ("methods", "pairs", "config"):
        if required not in data and base is None:
            raise ConfigError(f"a suite file needs {required!r} (or 'base: <named suite>' to start from)")
    dataset = data.get("dataset", base.dataset if base else "cifar100")
    default_vanilla = base.vanilla_config if base else (
        "configs/cifar100/vanilla/{model}.yaml" if dataset == "cifar100" else data.get("config", ""))
    return SuiteSpec(
        name=str(data.get("name") or (base.name if base else default_name)),
        dataset=str(dataset),
        methods=[str(m).upper() for m in data.get("methods", base.methods if base else [])],
        pairs=[parse_pair(p) for p in data.get("pairs", base.pairs if base else [])],
        seeds=[int(s) for s in data.get("seeds", base.seeds if base else [0])],
        config=str(data.get("config", base.config if base else "")),
        vanilla_config=str(data.get("vanilla_config", default_vanilla)),
        teacher_config=data.get("teacher_config", base.teacher_config if base else None),
        overrides=flatten_overrides(data.get("overrides")),
        method_overrides={str(k).upper(): flatten_overrides(v)
                          for k, v in (data.get("method_overrides") or {}).items()},
        output=str(data.get("output", DEFAULT_OUTPUT)),
        paper_table=base.paper_table if base else None,
        skip_missing=bool(data.get("skip_missing", base.skip_missing if base else False)),
        slurm=dict(data.get("slurm") or (base.slurm if base else {})),
        jobs=int(data.get("jobs", base.jobs if base else 1)),
        sweep=parse_sweep(data.get("sweep")),
        method_sweep=_method_sweeps(data.get("method_sweep")),
    )


def _method_sweeps(data) -> Dict[str, Sweep]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"method_sweep must be a mapping {{METHOD: {{KEY: [value, ...]}}}}, got {data!r}")
    return {str(m).upper(): parse_sweep(v, f"method_sweep {str(m).upper()}") for m, v in data.items()}


def load_suite(name_or_path: str) -> SuiteSpec:
    """A named suite (:data:`NAMED_SUITES`) or a suite YAML file."""
    if name_or_path in NAMED_SUITES:
        return named_suite(name_or_path)
    if not os.path.isfile(name_or_path):
        raise MissingInputError(f"suite {name_or_path!r} is neither a named suite ({', '.join(NAMED_SUITES)}) "
                                f"nor a YAML file")

    with open(name_or_path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{name_or_path}: a suite file is a YAML mapping")
    return suite_from_dict(data, os.path.splitext(os.path.basename(name_or_path))[0])


def restrict(spec: SuiteSpec, methods: Optional[Sequence[str]] = None, pairs: Optional[Sequence[str]] = None,
             seeds: Optional[Sequence[int]] = None) -> SuiteSpec:
    """The suite limited to (or, for seeds, run with) the given methods, pairs and seeds."""
    out = SuiteSpec(**{**spec.__dict__})
    if methods:
        wanted = [m.upper() for m in methods]
        out.methods = [m for m in wanted]
    if pairs:
        chosen: List[Pair] = []
        for item in pairs:
            match = [p for p in spec.pairs if p.name == item]
            chosen += match or [parse_pair(item)]
        out.pairs = chosen
    if seeds:
        out.seeds = [int(s) for s in seeds]
    return out


def seeds_from_option(value: str) -> List[int]:
    """``--seeds``: ``3`` means seeds 0,1,2; ``0,5,7`` lists them."""
    value = value.strip()
    try:
        if "," in value:
            return [int(v) for v in value.split(",") if v.strip()]
        count = int(value)
    except ValueError:
        raise ConfigError(f"--seeds takes a count (3 = seeds 0,1,2) or a list (0,5,7), got {value!r}") from None
    if count < 1:
        raise ConfigError("--seeds needs at least one seed")
    return list(range(count))
