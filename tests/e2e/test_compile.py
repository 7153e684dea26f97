"""SOLVER.COMPILE: torch.compile of the distiller trains through tools/train.py and keeps the checkpoint keys."""

import json

import pytest
import torch

from tests.helpers import TRAIN, run_cli, tiny_overrides


@pytest.mark.slow
def test_compiled_training_runs_and_checkpoints_keep_plain_keys(tiny_cifar_root, tmp_path):
    proc = run_cli([TRAIN, *tiny_overrides(tiny_cifar_root, str(tmp_path), **{
        "DISTILLER.TYPE": "NONE", "SOLVER.EPOCHS": "1", "SOLVER.COMPILE": "True", "EXPERIMENT.NAME": "compiled"})],
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "distill" / "compiled"
    assert json.loads((out / "results.json").read_text())["finished"]
    student = torch.load(out / "student_latest", weights_only=True)["model"]
    assert "conv1.weight" in student and not any("_orig_mod" in k for k in student)
