"""End to end: tools/train.py and tools/eval.py as subprocesses on a tiny CIFAR-100-format folder."""

import json
import os

import pytest
import torch

from tests.helpers import REPO_ROOT, TRAIN, run_cli, tiny_overrides, write_teacher_checkpoint

EVAL = os.path.join(REPO_ROOT, "tools", "eval.py")


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory):
    return write_teacher_checkpoint(str(tmp_path_factory.mktemp("teacher") / "ckpt.pth"), "resnet14")


@pytest.mark.parametrize("method", ["NONE", "KD", "DKD"])
def test_train_two_epochs_writes_mdistiller_output_folder(method, tiny_cifar_root, teacher_ckpt, tmp_path):
    args = [TRAIN, *tiny_overrides(tiny_cifar_root, str(tmp_path), **{
        "DISTILLER.TYPE": method, "DISTILLER.TEACHER_CKPT": teacher_ckpt, "EXPERIMENT.NAME": method.lower()})]
    proc = run_cli(args, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "distill" / method.lower()
    for name in ("worklog.txt", "latest", "best", "epoch_1", "epoch_2", "student_latest", "student_best",
                 "results.json", "config.yaml"):
        assert (out / name).exists(), name
    assert any((out / "train.events").iterdir())
    latest = torch.load(out / "latest", weights_only=True)
    assert latest["epoch"] == 2 and set(latest) >= {"epoch", "model", "optimizer", "best_acc"}
    student = torch.load(out / "student_latest", weights_only=True)["model"]
    assert all(k.startswith("student.") for k in latest["model"] if not k.startswith("teacher."))
    assert set(student) == {k[len("student."):] for k in latest["model"] if k.startswith("student.")}
    has_teacher = any(k.startswith("teacher.") for k in latest["model"])
    assert has_teacher == (method != "NONE")
    results = json.loads((out / "results.json").read_text())
    assert results["finished"] and results["epoch"] == 2 and len(results["history"]) == 2
    assert results["method"] == method and 0 <= results["best_acc"] <= 100
    assert results["best_acc"] == max(h["test_acc"] for h in results["history"])
    log = (out / "worklog.txt").read_text()
    assert log.count("epoch: ") == 2 and "best_acc" in log and "test_acc_top5" in log
    if method == "NONE":
        proc = run_cli([EVAL, "-m", "resnet8", "-c", str(out / "student_best"), "DATASET.ROOT", tiny_cifar_root,
                        "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
                        "DATASET.NUM_WORKERS", "0"], cwd=str(tmp_path))
        assert proc.returncode == 0, proc.stderr[-2000:]
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
        assert metrics["test_acc"] == pytest.approx(results["history"][results["history"].index(
            max(results["history"], key=lambda h: h["test_acc"]))]["test_acc"])


def test_missing_dataset_is_a_clear_error(tmp_path):
    proc = run_cli([TRAIN, *tiny_overrides(str(tmp_path / "nowhere"), str(tmp_path))], cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "cifar-100-python" in proc.stderr and "Expected layout" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1  # one line, all of the advice


def test_missing_teacher_checkpoint_is_a_clear_error(tiny_cifar_root, tmp_path):
    proc = run_cli([TRAIN, *tiny_overrides(tiny_cifar_root, str(tmp_path), **{
        "DISTILLER.TYPE": "KD", "DISTILLER.TEACHER": "resnet56"})], cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "download_ckpts/cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth" in proc.stderr
    assert "download_teachers" in proc.stderr and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_mismatched_teacher_checkpoint_lists_the_differences(tiny_cifar_root, tmp_path):
    wrong = write_teacher_checkpoint(str(tmp_path / "wrong.pth"), "resnet8")  # fewer blocks than resnet14
    proc = run_cli([TRAIN, *tiny_overrides(tiny_cifar_root, str(tmp_path), **{
        "DISTILLER.TYPE": "KD", "DISTILLER.TEACHER_CKPT": wrong})], cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "missing in checkpoint" in proc.stderr and "layer1.1.conv1.weight" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_unknown_method_and_key_are_clear_errors(tmp_path):
    proc = run_cli([TRAIN, "DISTILLER.TYPE", "MAGIC"], cwd=str(tmp_path))
    assert proc.returncode == 2 and "valid:" in proc.stderr and "DKD" in proc.stderr
    proc = run_cli([TRAIN, "SOLVER.NOT_A_KEY", "1"], cwd=str(tmp_path))
    assert proc.returncode == 2 and "SOLVER.NOT_A_KEY" in proc.stderr and proc.stderr.count("\n") == 1


def test_nan_loss_stops_with_a_message(tiny_cifar_root, teacher_ckpt, tmp_path):
    proc = run_cli([TRAIN, *tiny_overrides(tiny_cifar_root, str(tmp_path), **{
        "DISTILLER.TYPE": "KD", "DISTILLER.TEACHER_CKPT": teacher_ckpt, "SOLVER.LR": "1e30"})], cwd=str(tmp_path))
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "non-finite loss" in proc.stderr and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
