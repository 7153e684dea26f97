"""The documentation cannot drift from the code or from itself: the extension guide's snippets are the
example plugin's code, the README's test command is the one ``.ci/run`` runs, every registered method and
dataset is in its table, the files, functions and config keys the README and ``docs/`` name exist, every
relative link and anchor resolves, every page of ``docs/`` is reachable from the README, and no paragraph
is written in two places."""

from __future__ import annotations

import glob
import os
import re
from typing import Dict, List

import pytest

from mdistiller_ddkd.dataset import DATASETS
from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import build_default_config, iter_flat
from tests.helpers import REPO_ROOT

EXAMPLE = os.path.join(REPO_ROOT, "examples", "plugin", "ddkd_example_plugin.py")
#: the README and every page of docs/, as paths relative to the repository
DOCS = ["README.md"] + sorted(os.path.relpath(p, REPO_ROOT) for p in glob.glob(os.path.join(REPO_ROOT, "docs", "*.md")))
README_MAX_LINES = 300
#: placeholders and patterns in paths, which name no single file
_PATTERN_CHARS = set("<>{}*…")


def _read(name: str) -> str:
    with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as f:
        return f.read()


def _code_blocks(text: str, language: str) -> List[str]:
    return re.findall(rf"^```{language}\n(.*?)\n```$", text, re.S | re.M)


def _outside_code(text: str) -> List[str]:
    """The lines of a Markdown text that are not inside a fenced code block (indented fences included)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def _example_regions() -> dict:
    return dict(re.findall(r"^# \[readme:(\w+)\]\n(.*?)\n# \[/readme\]$", _read(EXAMPLE), re.S | re.M))


def test_the_extension_guide_shows_the_example_plugin_verbatim():
    regions = _example_regions()
    assert set(regions) == {"dataset", "model", "method"}
    blocks = _code_blocks(_read("docs/extending.md"), "python")
    for name, code in regions.items():
        assert code in blocks, f"docs/extending.md's {name} snippet differs from the [readme:{name}] part of {EXAMPLE}"


def test_the_readme_prints_the_exact_command_ci_runs_and_the_everyday_one():
    ci = [line for line in _read(".ci/run").splitlines() if line.strip() and not line.startswith(("#", "set ", "cd "))]
    readme = _read("README.md")
    commands = "\n".join(_code_blocks(readme, "bash")).splitlines()
    assert ci[-1] in commands  # the full suite: CI's last command, after what it starts for the tests
    assert "pytest" in ci[-1] and "-m" not in ci[-1].split("pytest", 1)[1]  # every test, the slow ones too
    everyday = ci[-1].split(" && .venv/bin/ruff")[0] + ' && .venv/bin/python -m pytest -q -n 2 -m "not slow"'
    assert everyday in commands
    assert "the full suite" in readme.lower() and "the everyday test command" in readme.lower()


def _table_names(text: str) -> set:
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.M))


def _section(text: str, heading: str) -> str:
    """The text under the heading ``heading`` (any level), up to the next heading of that level or higher."""
    text = "\n".join(_outside_code(text))
    match = re.search(rf"^(#+) {re.escape(heading)}$", text, re.M)
    assert match, f"no heading {heading!r}"
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, re.M)
    return rest[:end.start()] if end else rest


def _package_methods() -> set:
    """The methods this package registers (other tests may register, and remove, methods of their own)."""
    return {name for name, cls in distiller_dict.items() if cls.__module__.startswith("mdistiller_ddkd.")}


@pytest.mark.parametrize("doc, heading", [("README.md", "Methods"), ("docs/methods.md", "Config keys")])
def test_every_method_of_the_package_has_a_table_row(doc, heading):
    names = _table_names(_section(_read(doc), heading))
    methods = _package_methods()
    assert names == methods, (f"{doc} ({heading}): rows for unregistered names {sorted(names - methods)}, "
                              f"no row for {sorted(methods - names)}")


def test_every_registered_dataset_is_in_the_usage_table():
    names = _table_names(_section(_read("docs/usage.md"), "Datasets and models"))
    missing = sorted(set(DATASETS) - names)
    assert not missing, f"docs/usage.md (Datasets and models) lacks table rows for datasets {missing}"


def _doc_paths(text: str) -> List[str]:
    ticked = re.findall(r"`((?:mdistiller_ddkd|configs|tools|tests|docs|examples|\.ci)/[^`\s]*)`", text)
    return [p for p in ticked if not _PATTERN_CHARS & set(p)]


@pytest.mark.parametrize("doc", DOCS)
def test_the_files_the_docs_name_exist(doc):
    """Backticked paths name files of the repository (from its root, or from the page's folder)."""
    base = os.path.dirname(os.path.join(REPO_ROOT, doc))
    missing = [p for p in _doc_paths(_read(doc))
               if not os.path.exists(os.path.join(base, p)) and not os.path.exists(os.path.join(REPO_ROOT, p))]
    assert not missing, f"{doc} names files that do not exist: {missing}"


def _links(text: str) -> List[tuple]:
    """``(target, anchor)`` of every relative Markdown link and image outside code blocks and code spans."""
    prose = re.sub(r"`[^`\n]*`", "", "\n".join(_outside_code(text)))
    found = re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]*))?\)", prose)
    return [(t, a) for t, a in found if not re.match(r"[a-z]+:", t)]


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def _anchors(path: str) -> set:
    with open(path, encoding="utf-8") as f:
        return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", "\n".join(_outside_code(f.read())), re.M)}


def _broken_links(doc: str, root: str = REPO_ROOT) -> List[str]:
    """As GitHub resolves links: the file relative to the page's folder, the anchor a heading of that file."""
    with open(os.path.join(root, doc), encoding="utf-8") as f:
        links = _links(f.read())
    broken = []
    for target, anchor in links:
        path = os.path.normpath(os.path.join(root, os.path.dirname(doc), target or os.path.basename(doc)))
        if not os.path.exists(path):
            broken.append(f"{target} (no such file)")
        elif anchor and (not path.endswith(".md") or anchor not in _anchors(path)):
            broken.append(f"{target}#{anchor} (no such heading)")
    return broken


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_resolves(doc):
    broken = _broken_links(doc)
    assert not broken, f"{doc} has broken links: {broken}"


def test_the_link_check_finds_a_missing_file_and_a_missing_heading(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Real `one`\n\n```bash\n# not a heading\n```\n")
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md#real-one) [gone](docs/b.md) [bad](docs/a.md#not-a-heading) [self](#a-title)\n"
        "![img](docs/a.md) [web](https://example.org/x.md) `[code](c.md)`\n\n```\n[inside](code.md)\n```\n")
    assert _broken_links("README.md", str(tmp_path)) == [
        "docs/b.md (no such file)", "docs/a.md#not-a-heading (no such heading)", "#a-title (no such heading)"]
    (tmp_path / "docs" / "a.md").write_text("# A\n\n[up](../README.md#a-title)\n")
    assert _broken_links("docs/a.md", str(tmp_path)) == ["../README.md#a-title (no such heading)"]
    assert _slug("Reproducing Tables 1–3 on GPUs") == "reproducing-tables-13-on-gpus"
    assert _slug("Whole epochs: DataLoader vs `GPU_AUGMENT`") == "whole-epochs-dataloader-vs-gpu_augment"


def _linked_pages(doc: str) -> set:
    pages = set()
    for target, _ in _links(_read(doc)):
        name = os.path.normpath(os.path.join(os.path.dirname(doc), target)) if target else doc
        if name.endswith(".md") and os.path.isfile(os.path.join(REPO_ROOT, name)):
            pages.add(name)
    return pages


def test_every_docs_page_is_reachable_from_the_readme():
    seen, todo = {"README.md"}, ["README.md"]
    while todo:
        for page in _linked_pages(todo.pop()) - seen:
            seen.add(page)
            todo.append(page)
    orphans = sorted(set(DOCS) - seen)
    assert not orphans, f"no link from README.md (or a page it reaches) leads to {orphans}"


def test_the_readme_is_short():
    lines = _read("README.md").count("\n")
    assert lines <= README_MAX_LINES, (f"README.md has {lines} lines; keep it to what a newcomer needs first "
                                       f"(at most {README_MAX_LINES}) and move reference text to docs/")


def test_the_readme_prose_fits_120_columns():
    long = [line for line in _outside_code(_read("README.md")) if len(line) > 120 and not line.startswith("|")]
    assert not long, f"README.md lines over 120 characters: {long}"


def _paragraph_lines(doc: str) -> Dict[str, str]:
    """Prose and table lines long enough to carry a fact, normalised, outside code blocks."""
    lines = {}
    for line in _outside_code(_read(doc)):
        text = " ".join(line.strip(" -|*").split())
        if len(text) >= 80 and not re.fullmatch(r"[-|: ]+", text):
            lines[text] = doc
    return lines


def test_no_text_is_written_in_two_places():
    """A fact lives on one page and the others link to it: no line of 80+ characters is on two pages."""
    seen: Dict[str, str] = {}
    twice = []
    for doc in DOCS:
        for text in _paragraph_lines(doc):
            if text in seen:
                twice.append(f"{seen[text]} and {doc}: {text[:70]}…")
            seen[text] = doc
    assert not twice, f"the same text is on two pages (keep it on one, link from the other): {twice}"


def test_the_code_and_keys_docs_ddkd_names_exist():
    """Every backticked file, function, class and DDKD config key of docs/ddkd.md is in the package."""
    source = "\n".join(_read(os.path.relpath(f, REPO_ROOT))
                       for f in glob.glob(os.path.join(REPO_ROOT, "mdistiller_ddkd", "**", "*.py"), recursive=True))
    files = {os.path.basename(f)
             for f in glob.glob(os.path.join(REPO_ROOT, "mdistiller_ddkd", "**", "*.py"), recursive=True)}
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


def _config_keys() -> set:
    """Every key of the default config and every node above one: ``SOLVER.DOT.DELTA``, ``SOLVER.DOT``."""
    keys = {k for k, _ in iter_flat(build_default_config())}
    return keys | {k.rsplit(".", i)[0] for k in keys for i in range(1, k.count(".") + 1)}


@pytest.mark.parametrize("doc", ["docs/configuration.md", "docs/methods.md", "docs/usage.md", "docs/reliability.md"])
def test_the_config_keys_the_reference_names_exist(doc):
    named = set(re.findall(r"`([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)+)`", _read(doc)))
    unknown = sorted(named - _config_keys())
    assert not unknown, f"{doc} names config keys the default config does not have: {unknown}"


def test_every_ddkd_key_is_in_the_configuration_reference():
    table = _section(_read("docs/configuration.md"), "DDKD and DiffKD keys")
    rows = set(re.findall(r"^\| `([A-Z0-9_.]+)` \|", table, re.M))
    keys = {k for k, _ in iter_flat(build_default_config().DDKD)}
    assert rows == keys, (f"docs/configuration.md's DDKD table: no row for {sorted(keys - rows)}, "
                          f"stale {sorted(rows - keys)}")
