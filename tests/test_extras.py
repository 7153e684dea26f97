"""The optional extras: the test extra installs every package of ``[wandb]``, ``[viz]``, ``[export]`` and
``[plot]``, ``[timm]`` (so CI, which installs ``.[test]``, runs their tests), and a test of an extra skips with the
install hint on a user's machine without it but fails in CI."""

from __future__ import annotations

import os
import runpy

import pytest
import setuptools

from tests.helpers import REPO_ROOT, require_extra


def _setup_arguments(monkeypatch) -> dict:
    captured = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
    runpy.run_path(os.path.join(REPO_ROOT, "setup.py"))
    return captured


def test_the_test_extra_installs_every_optional_extra(monkeypatch):
    extras = _setup_arguments(monkeypatch)["extras_require"]
    assert {"wandb", "viz", "export", "plot", "timm", "test"} <= set(extras)
    assert extras["export"] == ["onnx", "onnxscript", "onnxruntime"] and extras["wandb"] == ["wandb"]
    for name, packages in extras.items():
        assert set(packages) <= set(extras["test"]), name


def test_a_missing_extra_skips_on_a_users_machine_and_fails_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match=r"pip install 'mdistiller-ddkd\[viz\]'"):
        require_extra("no_such_module_for_this_test", "viz")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not installed in CI"):
        require_extra("no_such_module_for_this_test", "viz")
    assert require_extra("json", "none").dumps([]) == "[]"
