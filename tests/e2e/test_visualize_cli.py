"""``tools/visualize.py`` on two tiny runs (KD and DKD of one pair): the figures side by side and alone, and
the printed mean of |S − T| off the diagonal against an independent NumPy computation of both matrices
from the checkpoints' logits on the test split."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

from mdistiller_ddkd.dataset.registry import build_splits
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.models import get_model
from tests.helpers import REPO_ROOT, TRAIN, require_extra, run_cli, synthetic_overrides, write_teacher_checkpoint

VISUALIZE = os.path.join(REPO_ROOT, "tools", "visualize.py")
PNG = b"\x89PNG\r\n\x1a\n"


def _logits(checkpoint: str, images: torch.Tensor) -> np.ndarray:
    model = get_model("resnet8", "cifar", 10)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    with torch.no_grad():
        return model.eval()(images)[0].double().numpy()


def _mean_off_diagonal(student: np.ndarray, teacher: np.ndarray, labels: np.ndarray, k: int) -> float:
    """mdistiller's notebook: per-class mean logits of each, |S − T|, diagonal 0, mean of the rest."""
    s = np.stack([student[labels == c].mean(axis=0) for c in range(k)])
    t = np.stack([teacher[labels == c].mean(axis=0) for c in range(k)])
    diff = np.abs(s - t)
    return float(diff[~np.eye(k, dtype=bool)].mean())


def test_kd_and_dkd_side_by_side_with_the_numbers_computed_independently(tmp_path):
    require_extra("sklearn", "viz")
    require_extra("matplotlib", "viz")
    teacher = write_teacher_checkpoint(str(tmp_path / "teacher.pth"), "resnet8", num_classes=10, seed=3)
    runs = []
    for method in ("KD", "DKD"):
        opts = synthetic_overrides(str(tmp_path / method.lower()), teacher, epochs=1, **{"DISTILLER.TYPE": method})
        proc = run_cli([TRAIN, *opts], cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append(str(tmp_path / method.lower() / "distill" / "run"))
    out = tmp_path / "figs"
    proc = run_cli([VISUALIZE, *runs, "--out", str(out), "--max-samples", "30", "--seed", "1"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = ["tsne.png", "correlation.png", "tsne_run.png", "tsne_run-2.png", "correlation_run.png",
             "correlation_run-2.png"]
    assert sorted(os.listdir(out)) == sorted(names)
    for name in names:
        assert (out / name).read_bytes()[:8] == PNG, name

    cfg = load_config(os.path.join(runs[0], "config.yaml"))
    test = build_splits(cfg).test
    images = torch.stack([test[i][0] for i in range(len(test))])
    labels = np.array([int(test[i][1]) for i in range(len(test))])
    t_logits = _logits(teacher, images)
    printed = dict(re.findall(r"^(run(?:-2)?): \|S-T\| off the diagonal: mean ([0-9.]+)", proc.stdout, re.M))
    for label, run in zip(("run", "run-2"), runs):
        want = _mean_off_diagonal(_logits(os.path.join(run, "student_best"), images), t_logits, labels, 10)
        assert float(printed[label]) == pytest.approx(want, abs=2e-6), label
    assert "KD resnet8→resnet8 run;" in proc.stdout and "DKD resnet8→resnet8 run-2;" in proc.stdout
    assert "t-SNE of 30 test images" in proc.stdout
