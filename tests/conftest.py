"""Shared fixtures: the reference data (``tests/data``) and tiny data on disk. Helpers are in helpers.py."""

from __future__ import annotations

import os
import shutil

import pytest
import torch

from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.dataset.cifar_format import write_cifar100_folder
from tests.helpers import load_reference, tiny_run_overrides

# one intra-op thread per test process: tiny models gain nothing from more, and on 2 cores several
# threads per process (pytest plus the subprocesses it starts) oversubscribe the CPU badly
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def models_reference():
    return load_reference("mdistiller_models.json")


@pytest.fixture(scope="session")
def outputs_reference():
    return load_reference("mdistiller_model_outputs.json")


@pytest.fixture(scope="session")
def tiny_cifar_root(tmp_path_factory):
    """A folder holding ``cifar-100-python/`` in the real pickle format (96 train, 48 test images)."""
    root = str(tmp_path_factory.mktemp("cifar"))
    write_cifar100_folder(root, n_train=96, n_test=48, num_classes=100, seed=0)
    return root


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """LOG.PREFIX of a finished 2-epoch ``TINY_RUN`` (copy it before changing anything: ``run_copy``)."""
    prefix = tmp_path_factory.mktemp("finished")
    assert train_main(tiny_run_overrides(prefix)) == 0
    return str(prefix)


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """``(LOG.PREFIX, run folder)`` of a copy of ``finished_run``."""
    prefix = tmp_path / "copy"
    shutil.copytree(finished_run, prefix)
    return str(prefix), os.path.join(str(prefix), "distill", "run")
