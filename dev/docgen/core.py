"""The machinery of generated doc blocks: markers, the block registry, rewriting, collecting results.

A docs page marks a generated part as ``<!-- generated: NAME -->`` … ``<!-- end generated -->`` (on its own
lines, or inline inside a sentence or a table cell); :func:`update_docs` replaces what is between the markers
by ``BLOCKS[NAME](results_dir)``, a Markdown string made from the files in ``docs/results/``. A number a
page shows inside such a block is therefore a fact of the committed results, never a hand copy.

The results are written from real run folders: ``python tools/make_docs.py collect output/suites/demo
docs/results/demo-1thread.json`` (:func:`collect_suite`) keeps, per run, what the blocks need (best and last
accuracy, the test accuracy and LR of every epoch, its non-default config, seconds, threads) and the suite's
``suite.json`` (wall time, CPU time, load, machine). ``python tools/make_docs.py`` rewrites the pages,
``--check`` lists the stale blocks.

A new block is a function of the results folder registered under its name::

    @register_block("bench-step")
    def _bench_step(results_dir: str) -> str:
        return markdown_table(...)  # from a file under results_dir

in a module of this package that ``__init__.py`` imports.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from mdistiller_ddkd.engine.cfg import build_default_config, iter_flat, load_config
from mdistiller_ddkd.engine.determinism import source_hash
from mdistiller_ddkd.errors import DataFileError, MissingInputError, UnknownNameError
from mdistiller_ddkd.fileio import write_text_atomic
from mdistiller_ddkd.registry import Registry
from mdistiller_ddkd.results_file import read_results
from mdistiller_ddkd.suite.manifest import MANIFEST
from mdistiller_ddkd.suite.result_tables import RunResult, Table, build_tables, method_order

#: where the committed results live, relative to the repository root
RESULTS_DIR = os.path.join("docs", "results")
#: the repository this developer tooling lives in (its commits name the code of committed results)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: the pages whose blocks are generated, relative to the repository root
DOC_PATTERNS = ("README.md", os.path.join("docs", "*.md"))
BLOCK_MARKERS = re.compile(r"<!-- generated: ([\w.-]+) -->(.*?)<!-- end generated -->", re.S)

BlockFunction = Callable[[str], str]
#: name -> function(results_dir) -> Markdown; see :func:`register_block`
BLOCKS: Registry[BlockFunction] = Registry("generated block")


def register_block(name: str) -> Callable[[BlockFunction], BlockFunction]:
    """Decorator: the function makes the block ``name`` from a results folder."""
    return BLOCKS.register(name)


def rewrite_text(text: str, results_dir: str, blocks: Optional[Registry[BlockFunction]] = None
                 ) -> Tuple[str, List[str]]:
    """``(text with every generated block made anew, names of the blocks whose content changed)``. A block
    written on its own lines keeps its content on lines between the markers; an inline block stays inline."""
    blocks = BLOCKS if blocks is None else blocks
    changed: List[str] = []
    cache: Dict[str, str] = {}

    def replace(match: "re.Match[str]") -> str:
        name, old = match.group(1), match.group(2)
        if name not in cache:
            cache[name] = blocks.get(name)(results_dir).strip("\n")
        new = f"\n{cache[name]}\n" if old.startswith("\n") else cache[name]
        if new != old:
            changed.append(name)
        return f"<!-- generated: {name} -->{new}<!-- end generated -->"

    return BLOCK_MARKERS.sub(replace, text), changed


def block_names(text: str) -> List[str]:
    """The names of the generated blocks in ``text``, in order."""
    return [name for name, _ in BLOCK_MARKERS.findall(text)]


def doc_files(root: str, patterns: Sequence[str] = DOC_PATTERNS) -> List[str]:
    """The pages (paths relative to ``root``) that may hold generated blocks."""
    found: List[str] = []
    for pattern in patterns:
        found += sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, pattern)))
    return found


def update_docs(root: str = ".", results_dir: Optional[str] = None, check: bool = False,
                blocks: Optional[Registry[BlockFunction]] = None) -> List[str]:
    """Rewrite the generated blocks of every page under ``root`` (``check``: only compare); returns
    ``"page: block"`` for each block that was (or, with ``check``, would be) changed."""
    results_dir = results_dir or os.path.join(root, RESULTS_DIR)
    stale: List[str] = []
    for page in doc_files(root):
        path = os.path.join(root, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            new, changed = rewrite_text(text, results_dir, blocks)
        except UnknownNameError as err:
            raise UnknownNameError(f"{page}: {err.args[0]}") from None
        stale += [f"{page}: {name}" for name in changed]
        if changed and not check:
            write_text_atomic(path, new)
    return stale


# ------------------------------------------------------------------------------------------ collecting
#: config keys that depend on where a run was written, left out of the recorded config
LOCATION_KEYS = ("LOG.PREFIX", "EXPERIMENT.PROJECT", "EXPERIMENT.NAME", "DISTILLER.TEACHER_CKPT")


def non_default_config(cfg) -> Dict[str, object]:
    """``{"A.B": value}`` of the keys of a yacs config that differ from the package's defaults, without the
    :data:`LOCATION_KEYS`."""
    defaults = dict(iter_flat(build_default_config()))
    return {key: _plain(value) for key, value in iter_flat(cfg)
            if key not in LOCATION_KEYS and _plain(defaults.get(key)) != _plain(value)}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def collect_suite(root: str) -> Dict:
    """What the docs need from a suite's output folder ``root`` (``<output>/<suite>``): its ``suite.json`` and,
    per finished run, method, pair, seed, best/last accuracy, the test accuracy and LR of each epoch, the
    run's non-default config, and its seconds and threads from ``suite.json``."""
    manifest_path = os.path.join(root, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise MissingInputError(f"{manifest_path} does not exist: collect the folder of a suite run by "
                                f"`ddkd-suite` (it writes {MANIFEST} at the end)")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    runs, sources = [], set()
    for name in sorted(manifest["runs"]):
        folder = os.path.join(root, name)
        results = read_results(folder)
        if results is None or not results.get("finished"):
            raise DataFileError(f"{folder}: not a finished run (collect a suite whose runs are all done)")
        history = results.get("history") or []
        runs.append({
            "name": name, "method": results["method"], "teacher": results["teacher"],
            "student": results["student"], "dataset": results["dataset"], "seed": results["seed"],
            **{key: results.get(key) for key in ("best_acc", "best_acc_top5", "last_acc", "last_acc_top5")},
            "test_acc": [round(h["test_acc"], 2) for h in history], "lr": [h["lr"] for h in history],
            "config": non_default_config(load_config(os.path.join(folder, "config.yaml"))),
            **{key: manifest["runs"][name].get(key) for key in ("state", "threads", "seconds")},
        })
        sources.add((results.get("provenance") or {}).get("sources"))
    summary = {key: value for key, value in manifest.items() if key != "runs"}
    return {"suite": manifest["suite"], "manifest": summary, "code": measured_code(root, sources), "runs": runs}


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", REPO_ROOT, *args], capture_output=True, text=True, timeout=60)
    except OSError as err:
        raise MissingInputError(f"git is needed to record the commit the results were measured with: {err}")
    if done.returncode != 0:
        raise MissingInputError(f"git {' '.join(args)} failed in {REPO_ROOT}: {done.stderr.strip()}")
    return done.stdout.strip()


def measured_code(root: str, hashes: Set[Optional[str]]) -> Dict[str, str]:
    """The commit and package source hash the runs of ``root`` were measured with (``hashes``: what each
    recorded), refused in one line unless all are this checkout's current sources and those are committed."""
    current = source_hash()
    if hashes != {current}:
        raise DataFileError(f"{root}: its runs were measured with other package sources than this checkout's "
                            f"({', '.join(sorted(str(h)[:12] for h in hashes))} against {current[:12]}): run the "
                            f"suite again with the code to be committed beside its results")
    if _git("status", "--porcelain", "--", "mdistiller_ddkd"):
        raise DataFileError("mdistiller_ddkd/ has uncommitted changes: commit the code the results were measured "
                            "with first, so that the recorded commit holds it")
    return {"commit": _git("rev-parse", "HEAD"), "sources": current}


def write_results(data: Dict, path: str) -> None:
    """Write collected results as indented JSON (one file per suite run, committed under docs/results/)."""
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def read_results_file(path: str) -> Dict:
    """A file written by :func:`write_results`."""
    if not os.path.isfile(path):
        raise MissingInputError(f"{path} does not exist: write it with `python tools/make_docs.py collect`")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def run_results(data: Dict) -> List[RunResult]:
    """The collected runs as the report's :class:`RunResult` (to tabulate them exactly as ``ddkd-table``)."""
    return [RunResult(path=r["name"], dataset=r["dataset"], method=r["method"], teacher=r["teacher"],
                      student=r["student"], seed=r["seed"], finished=True,
                      values={k: r[k] for k in ("best_acc", "best_acc_top5", "last_acc", "last_acc_top5")})
            for r in data["runs"]]


def suite_table(data: Dict, metric: str = "best") -> Table:
    """The result table of one collected suite run, rows and columns as the suite prints it."""
    runs = data["runs"]
    pairs = list(dict.fromkeys((r["teacher"], r["student"]) for r in runs if r["method"] != "NONE"))
    methods = method_order({r["method"] for r in runs} - {"NONE"})
    (table,) = build_tables(run_results(data), metric, pairs=pairs, dataset=runs[0]["dataset"], methods=methods)
    return table
