"""House rule: no function in the package (or the developer tooling, dev/) is longer than 60 lines (from its
``def`` line to its last line, docstring and blank lines included; decorators not counted). Measured on the syntax
tree, so nested functions count towards their parent as well as on their own. No model-zoo forward exceeds the
limit, so nothing is exempt."""

from __future__ import annotations

import ast
import os
import textwrap
from typing import Iterator, List, Tuple

from tests.helpers import REPO_ROOT

MAX_LINES = 60
#: the installed package and the repository's developer tooling
PACKAGES = (os.path.join(REPO_ROOT, "mdistiller_ddkd"), os.path.join(REPO_ROOT, "dev"))


def function_lengths(source: str) -> Iterator[Tuple[str, int, int]]:
    """``(qualified name, first line, number of lines)`` of every function and method in ``source``."""

    def visit(node: ast.AST, prefix: str) -> Iterator[Tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                yield name, child.lineno, child.end_lineno - child.lineno + 1
                name += "."
            elif isinstance(child, ast.ClassDef):
                name = f"{prefix}{child.name}."
            yield from visit(child, name)

    yield from visit(ast.parse(source), "")


def _package_functions() -> List[Tuple[str, str, int, int]]:
    found = []
    for folder, _, files in (walked for package in PACKAGES for walked in os.walk(package)):
        for file in sorted(files):
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                with open(path, encoding="utf-8") as f:
                    rel = os.path.relpath(path, REPO_ROOT)
                    found += [(rel, name, line, length) for name, line, length in function_lengths(f.read())]
    return found


def test_the_measure_counts_def_to_last_line_and_nests():
    source = textwrap.dedent('''
        @decorator
        def outer(a):
            """doc"""

            def inner():
                return 1
            return inner

        class K:
            async def method(self):
                pass
    ''')
    assert sorted(function_lengths(source)) == [("K.method", 11, 2), ("outer", 3, 6), ("outer.inner", 6, 2)]


def test_no_function_in_the_package_is_longer_than_60_lines():
    functions = _package_functions()
    assert len(functions) > 200  # the walk really saw the package
    assert any(path.startswith("dev" + os.sep) for path, *_ in functions)  # and the developer tooling
    offenders = [f"{path}:{line} {name} ({length} lines)" for path, name, line, length in functions
                 if length > MAX_LINES]
    assert not offenders, f"functions over {MAX_LINES} lines (split them):\n" + "\n".join(offenders)
