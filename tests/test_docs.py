"""The documentation cannot drift from the code: the README's extension snippets are the example plugin's
code, its CI command is the one ``.ci/run`` runs, every registered method and dataset is in its tables,
and the files, functions and config keys the README and ``docs/`` name exist."""

from __future__ import annotations

import glob
import os
import re
from typing import List

import pytest

from mdistiller_ddkd.dataset import DATASETS
from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import build_default_config, iter_flat
from tests.helpers import REPO_ROOT

EXAMPLE = os.path.join(REPO_ROOT, "examples", "plugin", "ddkd_example_plugin.py")
DOCS = ["README.md", "docs/ddkd.md", "docs/benchmarks.md"]
#: placeholders and patterns in paths, which name no single file
_PATTERN_CHARS = set("<>{}*…")


def _read(name: str) -> str:
    with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as f:
        return f.read()


def _code_blocks(text: str, language: str) -> List[str]:
    return re.findall(rf"^```{language}\n(.*?)\n```$", text, re.S | re.M)


def _example_regions() -> dict:
    return dict(re.findall(r"^# \[readme:(\w+)\]\n(.*?)\n# \[/readme\]$", _read(EXAMPLE), re.S | re.M))


def test_the_readme_shows_the_example_plugin_verbatim():
    regions = _example_regions()
    assert set(regions) == {"dataset", "model", "method"}
    blocks = _code_blocks(_read("README.md"), "python")
    for name, code in regions.items():
        assert code in blocks, f"README's {name} snippet differs from the [readme:{name}] part of {EXAMPLE}"


def test_the_readme_prints_the_exact_command_ci_runs():
    ci = [line for line in _read(".ci/run").splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert len(ci) == 1, ci
    assert ci[0] in "\n".join(_code_blocks(_read("README.md"), "bash")).splitlines()
    assert 'pytest -q -m "not slow"' in _read("README.md")  # the inner loop


def _table_names(text: str) -> set:
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.M))


def test_every_registered_method_and_dataset_is_in_the_readme_tables():
    names = _table_names(_read("README.md"))
    methods = sorted(set(distiller_dict) - names)
    datasets = sorted(set(DATASETS) - names)
    assert not methods and not datasets, (
        f"README.md lacks table rows for methods {methods} / datasets {datasets} (What is inside)")


def _doc_paths(text: str) -> List[str]:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    ticked = re.findall(r"`((?:mdistiller_ddkd|configs|tools|tests|docs|examples|\.ci)/[^`\s]*)`", text)
    return [p for p in links + ticked if not p.startswith("http") and not _PATTERN_CHARS & set(p)]


@pytest.mark.parametrize("doc", DOCS)
def test_the_files_the_docs_name_exist(doc):
    base = os.path.dirname(os.path.join(REPO_ROOT, doc))
    missing = [p for p in _doc_paths(_read(doc))
               if not os.path.exists(os.path.join(base, p)) and not os.path.exists(os.path.join(REPO_ROOT, p))]
    assert not missing, f"{doc} names files that do not exist: {missing}"


def test_the_code_and_keys_docs_ddkd_names_exist():
    """Every backticked file, function, class and DDKD config key of docs/ddkd.md is in the package."""
    source = "\n".join(_read(os.path.relpath(f, REPO_ROOT))
                       for f in glob.glob(os.path.join(REPO_ROOT, "mdistiller_ddkd", "**", "*.py"), recursive=True))
    files = {os.path.basename(f) for f in glob.glob(os.path.join(REPO_ROOT, "mdistiller_ddkd", "**", "*.py"), recursive=True)}
    cfg = build_default_config()
    keys = {k for k, _ in iter_flat(cfg)} | {k for k, _ in iter_flat(cfg.DDKD)} | set(cfg)
    unknown = []
    for token in set(re.findall(r"`([^`\n]+)`", _read("docs/ddkd.md"))):
        if re.fullmatch(r"[\w/]+\.py", token):  # relative to the repository, the package, or a bare name
            ok = any(os.path.isfile(os.path.join(REPO_ROOT, *parts, token)) for parts in ((), ("mdistiller_ddkd",)))
            ok = ok or ("/" not in token and token in files)
        elif re.fullmatch(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*", token):
            ok = token in keys
        elif re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", token) and len(token) > 3:  # shorter: maths (z_s)
            last = re.escape(token.split(".")[-1])
            ok = any(re.search(p, source, re.M) for p in
                     (rf"\bdef {last}\b", rf"\bclass {last}\b", rf"self\.{last}\b", rf'"{last}"', rf"^{last} ="))
        else:
            continue
        if not ok:
            unknown.append(token)
    assert not unknown, f"docs/ddkd.md names what the package does not have: {sorted(unknown)}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS)
def test_the_anchors_the_docs_link_to_exist(doc):
    broken = []
    for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", _read(doc)):
        name = os.path.normpath(os.path.join(os.path.dirname(doc), target)) if target else doc
        headings = re.findall(r"^#{1,6} (.+)$", _read(name), re.M)
        if anchor not in {_slug(h) for h in headings}:
            broken.append(f"{target}#{anchor}")
    assert not broken, f"{doc} links to anchors that no heading has: {broken}"
