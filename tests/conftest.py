"""Shared fixtures: the reference data in ../shared (skipped when absent) and tiny data on disk."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from mdistiller_ddkd.pairs import CIFAR_PAIRS as PAPER_CIFAR_PAIRS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_REFERENCE = os.path.join(os.path.dirname(REPO_ROOT), "shared", "reference")

# one intra-op thread per test process: tiny models gain nothing from more, and on 2 cores several
# threads per process (pytest plus the subprocesses it starts) oversubscribe the CPU badly
torch.set_num_threads(1)

#: the eleven CIFAR-100 teacher/student pairs (the ten of the paper's Tables 2 and 3 and mdistiller's
#: resnet110 -> resnet32), stated once in the package: ``{config name: (teacher, student)}``
CIFAR_PAIRS = dict(PAPER_CIFAR_PAIRS)


def load_reference(name: str):
    """A JSON file of ../shared/reference, or skip the test with the reason."""
    path = os.path.join(SHARED_REFERENCE, name)
    if not os.path.isfile(path):
        pytest.skip(f"{path} is absent (a user checkout has no ../shared); reference checks skipped")
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def models_reference():
    return load_reference("mdistiller_models.json")


@pytest.fixture(scope="session")
def outputs_reference():
    return load_reference("mdistiller_model_outputs.json")


@pytest.fixture(scope="session")
def tiny_cifar_root(tmp_path_factory):
    """A folder holding ``cifar-100-python/`` in the real pickle format (96 train, 48 test images)."""
    from mdistiller_ddkd.dataset.cifar_format import write_cifar100_folder

    root = str(tmp_path_factory.mktemp("cifar"))
    write_cifar100_folder(root, n_train=96, n_test=48, num_classes=100, seed=0)
    return root


def write_teacher_checkpoint(path: str, model_name: str, num_classes: int = 100, seed: int = 0) -> str:
    """A teacher checkpoint in mdistiller's format (``{"model": state_dict}``) for a fresh model."""
    from mdistiller_ddkd.models import cifar_model_dict

    torch.manual_seed(seed)
    model = cifar_model_dict[model_name][0](num_classes=num_classes)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"model": model.state_dict(), "epoch": 240, "best_acc": 0.0}, path)
    return path


def run_cli(args, cwd, timeout=600, env_extra=None):
    """Run a command-line tool of this repository as a subprocess; return the CompletedProcess."""
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    if env_extra:
        env.update(env_extra)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
