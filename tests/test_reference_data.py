"""The facts copied from mdistiller into the repository (``tests/data``: model layouts and outputs, config
defaults; ``mdistiller_ddkd/data/paper_tables.json``: the paper's tables) are intact and, where the
project's ``../shared/reference`` is beside the checkout, equal to it byte for byte.

``tests/data/SHA256SUMS`` records the digests of the copies (paths relative to the repository root), so
a checkout without ``../shared`` still notices an edited or damaged copy."""

from __future__ import annotations

import hashlib
import os
from typing import Dict

import pytest

from tests.helpers import REPO_ROOT, SHARED_REFERENCE, TEST_DATA


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _recorded() -> Dict[str, str]:
    with open(os.path.join(TEST_DATA, "SHA256SUMS"), encoding="utf-8") as f:
        return {name: digest for digest, name in (line.split() for line in f if line.strip())}


def test_every_file_in_tests_data_is_recorded():
    recorded = {os.path.basename(p) for p in _recorded() if p.startswith("tests/data/")}
    assert recorded == {n for n in os.listdir(TEST_DATA) if n != "SHA256SUMS"}


@pytest.mark.parametrize("relative", sorted(_recorded()))
def test_the_copy_is_intact_and_equals_the_shared_reference_where_present(relative):
    copy = os.path.join(REPO_ROOT, relative)
    assert _sha256(copy) == _recorded()[relative], f"{relative} was edited or damaged; copy it again"
    shared = os.path.join(SHARED_REFERENCE, os.path.basename(relative))
    if os.path.isfile(shared):  # the project's workspace holds the source of the copy
        assert _sha256(copy) == _sha256(shared), f"{relative} differs from {shared}; copy it again"
