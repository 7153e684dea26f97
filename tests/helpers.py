"""What several test modules share: paths, the reference data copied from mdistiller, tiny training
options, teacher checkpoints and a way to run the command-line tools. Fixtures live in conftest.py; test
modules import helpers from here, never from conftest or from one another."""

from __future__ import annotations

import glob
import importlib
import json
import os
import subprocess
import sys
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional

import pytest
import torch

from mdistiller_ddkd.models import cifar_model_dict
from mdistiller_ddkd.pairs import CIFAR_PAIRS as PAPER_CIFAR_PAIRS

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(REPO_ROOT, "tools")
TRAIN = os.path.join(TOOLS, "train.py")
#: the test plugin that kills or signals a training at exact moments (``tests/e2e/fault_plugin.py``)
FAULT_PLUGIN = ["--plugins", "tests.e2e.fault_plugin"]
#: facts copied from mdistiller (model state-dict layouts, outputs, config defaults) that the fidelity tests
#: check against; ``test_reference_data.py`` keeps them equal to ``../shared/reference/`` where it exists
TEST_DATA = os.path.join(REPO_ROOT, "tests", "data")
SHARED_REFERENCE = os.path.join(os.path.dirname(REPO_ROOT), "shared", "reference")

#: the eleven CIFAR-100 teacher/student pairs, stated once in the package: ``{config name: (teacher, student)}``
CIFAR_PAIRS: Dict[str, tuple] = dict(PAPER_CIFAR_PAIRS)


def load_reference(name: str):
    """A reference file of ``tests/data`` (JSON or YAML), parsed."""
    path = os.path.join(TEST_DATA, name)
    with open(path, encoding="utf-8") as f:
        if name.endswith(".json"):
            return json.load(f)
        import yaml

        return yaml.safe_load(f)


def write_teacher_checkpoint(path: str, model_name: str, num_classes: int = 100, seed: int = 0) -> str:
    """A teacher checkpoint in mdistiller's format (``{"model": state_dict}``) for a fresh model."""
    torch.manual_seed(seed)
    model = cifar_model_dict[model_name][0](num_classes=num_classes)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({"model": model.state_dict(), "epoch": 240, "best_acc": 0.0}, path)
    return path


def subprocess_env(env_extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment the tools run in: this checkout first on PYTHONPATH, one thread unless told."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    if env_extra:
        env.update(env_extra)
    return env


def run_cli(args: List[str], cwd: str, timeout: float = 600, env_extra: Optional[Dict[str, str]] = None):
    """Run a command-line tool of this repository as a subprocess; return the CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=cwd, env=subprocess_env(env_extra), capture_output=True,
                          text=True, timeout=timeout)


def flat(options: Dict[str, object]) -> List[str]:
    """``{"A.B": 1}`` -> ``["A.B", "1"]``: KEY VALUE pairs for the tools and ``load_config``."""
    return [str(x) for kv in options.items() for x in kv]


def tiny_overrides(root: str, prefix: str, **extra) -> List[str]:
    """KEY VALUE pairs of a 2-epoch resnet14 -> resnet8 run on a tiny CIFAR-100 folder at ``root``."""
    opts = {
        "DATASET.ROOT": root, "DATASET.CHECK_INTEGRITY": "False", "DATASET.DOWNLOAD": "False",
        "DATASET.NUM_WORKERS": "0", "DATASET.TEST.BATCH_SIZE": "24", "SOLVER.BATCH_SIZE": "32",
        "SOLVER.EPOCHS": "2", "SOLVER.DEVICE": "cpu", "LOG.PREFIX": prefix, "LOG.SAVE_CHECKPOINT_FREQ": "1",
        "DISTILLER.TEACHER": "resnet14", "DISTILLER.STUDENT": "resnet8",
    }
    opts.update(extra)
    return flat(opts)


def synthetic_overrides(prefix: str, teacher: str, workers: int = 0, epochs: int = 3, **extra) -> List[str]:
    """KEY VALUE pairs of a resnet8 <- resnet8 KD run on tiny synthetic data (80 train images, 5 steps per
    epoch), output ``prefix/distill/run``."""
    values = {
        "DATASET.TYPE": "synthetic", "DATASET.SYNTHETIC.TRAIN_PER_CLASS": "8", "DATASET.SYNTHETIC.TEST_PER_CLASS": "4",
        "DATASET.NUM_WORKERS": str(workers), "DATASET.TEST.BATCH_SIZE": "40", "SOLVER.BATCH_SIZE": "16",
        "SOLVER.EPOCHS": str(epochs), "SOLVER.LR_DECAY_STAGES": "[2]", "SOLVER.DEVICE": "cpu",
        "DISTILLER.TYPE": "KD", "DISTILLER.TEACHER": "resnet8", "DISTILLER.STUDENT": "resnet8",
        "DISTILLER.TEACHER_CKPT": teacher, "LOG.PREFIX": prefix, "LOG.SAVE_CHECKPOINT_FREQ": "2",
        "EXPERIMENT.NAME": "run", "EXPERIMENT.SEED": "5",
    }
    values.update(extra)
    return flat(values)


def run_folder(prefix: str) -> str:
    """The output folder of a ``synthetic_overrides`` run."""
    return os.path.join(prefix, "distill", "run")


class Payload:
    """Unpickling calls ``open(marker, "w")``: the marker file appears if the payload ever runs."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


#: a tiny run: resnet8 alone, 2 epochs of 20 synthetic images, output ``LOG.PREFIX/distill/run``
TINY_RUN = {
    "DATASET.TYPE": "synthetic", "DATASET.SYNTHETIC.TRAIN_PER_CLASS": "2", "DATASET.SYNTHETIC.TEST_PER_CLASS": "1",
    "DATASET.NUM_WORKERS": "0", "DATASET.TEST.BATCH_SIZE": "10", "SOLVER.BATCH_SIZE": "8", "SOLVER.EPOCHS": "2",
    "SOLVER.DEVICE": "cpu", "DISTILLER.TYPE": "NONE", "DISTILLER.TEACHER": "resnet8", "DISTILLER.STUDENT": "resnet8",
    "LOG.SAVE_CHECKPOINT_FREQ": "0", "EXPERIMENT.NAME": "run",
}


def tiny_run_overrides(prefix, **extra) -> List[str]:
    """KEY VALUE pairs of ``TINY_RUN`` into ``prefix`` (plus ``extra``)."""
    return flat({**TINY_RUN, "LOG.PREFIX": str(prefix), **extra})


def call_cli(capsys, main, *args):
    """``(exit code, stdout, stderr)`` of a tool's ``main(args)`` run in this process."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def train_cli(capsys, *args):
    """``call_cli`` of ``ddkd-train``."""
    from mdistiller_ddkd.cli.train import main as train_main

    return call_cli(capsys, train_main, *args)


@contextmanager
def registered(registry, name: str, obj) -> Iterator[None]:
    """Within the block, ``obj`` is registered as ``name`` in ``registry`` (in place of what it held); the
    registry is restored after."""
    held = registry.get(name, None)
    registry.unregister(name)
    registry.register(name, obj)
    try:
        yield
    finally:
        registry.unregister(name)
        if held is not None:
            registry.register(name, held)


def snapshot(folder: str) -> Optional[Dict[str, bytes]]:
    """``{relative path: bytes}`` of a folder, or None when it does not exist."""
    if not os.path.isdir(folder):
        return None
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                out[os.path.relpath(os.path.join(root, name), folder)] = f.read()
    return out


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """A user error as the tools report it: exit code 2, one ``error:`` line, no traceback."""
    assert code == 2, err
    assert err.startswith("error: ") and err.strip().count("\n") == 0, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)


def bad_checkpoint(path, kind: str, marker) -> str:
    """A checkpoint file that is ``truncated``, ``garbage`` or ``malicious`` (unpickling it would create
    ``marker``)."""
    if kind == "malicious":
        torch.save({"model": Payload(marker)}, path)
    else:
        torch.save({"model": {"w": torch.zeros(3)}}, path)
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2] if kind == "truncated" else os.urandom(len(data)))
    return str(path)


def in_ci() -> bool:
    """True in CI (``CI=true``), where a test of a real system must run, never skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_extra(module: str, extra: str):
    """The module of an optional extra (``wandb`` of ``[wandb]``, ...): on a user's machine without it the test
    skips saying how to install it; in CI (``in_ci``) its absence fails the test."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if in_ci():
            pytest.fail(f"{module} (the [{extra}] extra) is not installed in CI: the test extra must install it")
        pytest.skip(f"needs {module}, the optional [{extra}] extra: pip install 'mdistiller-ddkd[{extra}]'")


def wandb_run_files(folder: str) -> List[str]:
    """The ``.wandb`` transaction logs of the offline W&B runs under ``folder/wandb/``, oldest first."""
    return sorted(glob.glob(os.path.join(folder, "wandb", "offline-run-*", "run-*.wandb")))


def wandb_records(path: str) -> List[Dict]:
    """The records of a ``.wandb`` file, read back by W&B's own reader (``wandb leet inspect --json``)."""
    proc = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", path], capture_output=True,
                          text=True, timeout=120, env=subprocess_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def slurm_env() -> Optional[Dict[str, str]]:
    """The environment in which Slurm's commands reach a cluster — ``$SLURM_CONF``, else the test cluster of
    ``tests/cluster/slurm_up.sh`` — or None when none answers."""
    import shutil

    if shutil.which("sinfo") is None:
        return None
    env = dict(os.environ)
    test_conf = os.path.join(os.environ.get("DDKD_SLURM_DIR", "/tmp/ddkd-slurm"), "slurm.conf")
    if "SLURM_CONF" not in env and os.path.isfile(test_conf):
        env["SLURM_CONF"] = test_conf
    try:
        probe = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None
    return env if probe.returncode == 0 and probe.stdout.strip() else None


#: the offline demo's last epochs (``docgen.PLATEAU_EPOCHS``): no student run's test accuracy moves by as much as
#: this between two consecutive ones (the old recipe jumped by 30-53 points there), and the teacher's, trained
#: once for every seed, by no more than the second: it is on its plateau (points)
DEMO_STUDENT_LATE_CHANGE = 10.0
DEMO_TEACHER_LATE_CHANGE = 1.0
