"""Opening a run folder (``engine/runs.py``), as ddkd-diagnose, ddkd-visualize and ddkd-export do: the config,
the student of ``student_best`` / ``student_latest`` with the number of classes its checkpoint holds, the
teacher resolved as training resolves it (or the ``--teacher-ckpt`` override), and the one-line refusals."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.engine.runs import infer_num_classes, load_distiller, load_student, load_teacher, open_run
from mdistiller_ddkd.errors import CheckpointMismatchError, MissingInputError
from mdistiller_ddkd.models import get_model


def _run_dir(prefix: str) -> str:
    return os.path.join(prefix, "distill", "run")


def test_a_folder_without_config_or_checkpoint_is_refused_in_words(finished_run, tmp_path):
    with pytest.raises(MissingInputError, match="not a run folder"):
        open_run(str(tmp_path))
    run = open_run(_run_dir(finished_run))
    with pytest.raises(MissingInputError, match="has no checkpoint 'epoch_7'"):
        run.checkpoint("epoch_7")


@pytest.mark.parametrize("which", ["best", "latest"])
def test_the_student_is_the_checkpoints_with_its_number_of_classes(finished_run, which):
    run = open_run(_run_dir(finished_run))
    student, epoch = load_student(run, which)
    saved = torch.load(os.path.join(run.path, f"student_{which}"), weights_only=True)
    reference = get_model("resnet8", "cifar", 10)
    reference.load_state_dict(saved["model"])
    image = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(student(image)[0], reference.eval()(image)[0], rtol=0, atol=0)
    assert not student.training and epoch == saved["epoch"]
    results = json.load(open(os.path.join(run.path, "results.json")))
    assert epoch in [r["epoch"] for r in results["history"]]


@pytest.mark.parametrize("model, dataset", [("resnet8", "cifar100"), ("vgg8", "cifar100"), ("MobileNetV2", "cifar100"),
                                            ("ShuffleV1", "cifar100"), ("wrn_16_1", "cifar100"),
                                            ("MobileNetV1", "imagenet"), ("ShuffleV2", "tiny_imagenet")])
def test_the_number_of_classes_is_read_off_the_classifier(model, dataset):
    cfg = load_config(None, ["DATASET.TYPE", dataset, "DISTILLER.STUDENT", model, "DISTILLER.TEACHER", model])
    assert infer_num_classes(cfg, get_model(model, dataset, 37).state_dict()) == 37
    with pytest.raises(CheckpointMismatchError, match="no classifier"):
        infer_num_classes(cfg, {"w": torch.zeros(3)})


def test_the_teacher_is_resolved_as_training_does_and_can_be_overridden(finished_run):
    run = open_run(_run_dir(finished_run))  # a NONE run of resnet8 with no teacher checkpoint of its own
    with pytest.raises(MissingInputError, match="no teacher checkpoint for resnet8"):
        load_teacher(run, 10)
    best = os.path.join(run.path, "student_best")
    run = open_run(run.path, ["DATASET.DOWNLOAD", "False"], teacher_ckpt=best)
    assert run.cfg.DISTILLER.TEACHER_CKPT == best
    teacher = load_teacher(run, 10)
    saved = torch.load(best, weights_only=True)["model"]
    assert not teacher.training
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in saved.items())


def test_a_student_file_is_not_a_distiller_checkpoint(finished_run):
    run = open_run(_run_dir(finished_run))
    distiller, epoch = load_distiller(run, "latest", 20, 10)
    assert epoch == 2
    with pytest.raises(CheckpointMismatchError, match="not a checkpoint of this run's NONE distiller"):
        load_distiller(run, "student_latest", 20, 10)
