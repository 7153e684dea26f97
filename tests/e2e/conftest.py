"""End-to-end tests: the real command-line tools run as subprocesses on tiny data. Every test here is
marked ``slow``, so ``pytest -m "not slow"`` is the fast inner loop (CI runs everything)."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)
