"""End to end: a 2-epoch DDKD run with LOG.DIAGNOSTICS through tools/train.py, then tools/diagnose.py on it."""

from __future__ import annotations

import json
import os

import pytest

from tests.helpers import REPO_ROOT, TRAIN, run_cli, write_teacher_checkpoint

DIAGNOSE = os.path.join(REPO_ROOT, "tools", "diagnose.py")


def test_diagnose_prints_every_metric_of_a_two_epoch_run(tmp_path):
    teacher = write_teacher_checkpoint(str(tmp_path / "teacher.pth"), "resnet8x4", num_classes=10)
    prefix = str(tmp_path / "out")
    proc = run_cli([TRAIN, "DISTILLER.TYPE", "DDKD", "DISTILLER.TEACHER", "resnet8x4", "DISTILLER.STUDENT", "resnet8",
                    "DISTILLER.TEACHER_CKPT", teacher, "DATASET.TYPE", "synthetic", "DATASET.NUM_WORKERS", "0",
                    "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "2", "DATASET.SYNTHETIC.TEST_PER_CLASS", "2",
                    "SOLVER.BATCH_SIZE", "8", "SOLVER.EPOCHS", "2", "SOLVER.DEVICE", "cpu", "LOG.PREFIX", prefix,
                    "EXPERIMENT.NAME", "ddkd_tiny", "LOG.DIAGNOSTICS", "True", "LOG.DIAGNOSTICS_FREQ", "1",
                    "LOG.DIAGNOSTICS_BATCH", "4"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    run = os.path.join(prefix, "distill", "ddkd_tiny")
    history = json.load(open(os.path.join(run, "results.json")))["history"]
    assert all("diag_feat_cka_denoised" in record and "diag_grad_total" in record for record in history)

    plots = str(tmp_path / "plots")
    proc = run_cli([DIAGNOSE, run, "--batches", "2", "--plot", plots], cwd=str(tmp_path))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert proc.returncode == 2 and "pip install" in proc.stderr
        pytest.skip("matplotlib is the optional [plot] extra; the Markdown report is checked without --plot")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "**DDKD resnet8x4 → resnet8**" in out and "20 test images" in out
    for label in ("| feature | MSE to the teacher latent |", "| feature | linear CKA with the teacher latent |",
                  "| logit | KL(teacher ‖ ·) at T=4 |", "| logit | top-1 agreement with the teacher (%) |",
                  "| logit | top-1 accuracy (%) |", "| autoencoder |", "| feat |", "| logit |", "t 0–250",
                  "| loss_kd_logit |", "| loss_kd_feat |", "| total |"):
        assert label in out, label
    for name in ("accuracy.png", "gap.png", "gamma.png", "gradients.png"):
        with open(os.path.join(plots, name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name

    proc = run_cli([DIAGNOSE, str(tmp_path)], cwd=str(tmp_path))  # not a run folder: one line, exit 2
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a run folder" in proc.stderr
