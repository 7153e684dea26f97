"""End to end: SOLVER.TRAINER dot through tools/train.py (CIFAR-100 format, --resume bit for bit) and a
DOT run on a Tiny-ImageNet tree in mdistiller's layout."""

import json
import os

import pytest
import torch

from mdistiller_ddkd.dataset.tiny_imagenet import write_tiny_imagenet_folder
from mdistiller_ddkd.models import get_model
from tests.helpers import TRAIN, run_cli, write_teacher_checkpoint


def cli_args(*flags, **opts):
    return [TRAIN, *flags] + [x for kv in opts.items() for x in kv]


def cifar_dot_opts(root, prefix, teacher_ckpt, name, epochs):
    return {
        "DATASET.ROOT": root, "DATASET.CHECK_INTEGRITY": "False", "DATASET.DOWNLOAD": "False",
        "DATASET.NUM_WORKERS": "0", "DATASET.TEST.BATCH_SIZE": "48", "SOLVER.BATCH_SIZE": "32",
        "SOLVER.EPOCHS": str(epochs), "SOLVER.LR_DECAY_STAGES": "[1]", "SOLVER.DEVICE": "cpu",
        "SOLVER.TRAINER": "dot", "SOLVER.WEIGHT_DECAY": "0.0005", "LOG.PREFIX": prefix, "EXPERIMENT.NAME": name,
        "EXPERIMENT.SEED": "5", "DISTILLER.TYPE": "KD", "DISTILLER.TEACHER": "resnet14",
        "DISTILLER.STUDENT": "resnet8", "DISTILLER.TEACHER_CKPT": teacher_ckpt,
    }


def test_dot_run_resumes_bit_for_bit(tiny_cifar_root, tmp_path):
    teacher = write_teacher_checkpoint(str(tmp_path / "teacher.pth"), "resnet14")
    prefix = str(tmp_path / "out")
    full = run_cli(cli_args(**cifar_dot_opts(tiny_cifar_root, prefix, teacher, "full", 2)), cwd=str(tmp_path))
    assert full.returncode == 0, full.stderr[-3000:]
    first = run_cli(cli_args(**cifar_dot_opts(tiny_cifar_root, prefix, teacher, "split", 1)), cwd=str(tmp_path))
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = run_cli(cli_args("--resume", **cifar_dot_opts(tiny_cifar_root, prefix, teacher, "split", 2)),
                      cwd=str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout

    a = torch.load(os.path.join(prefix, "distill", "full", "latest"), weights_only=True)
    b = torch.load(os.path.join(prefix, "distill", "split", "latest"), weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys() and state_a
    for index in state_a:
        assert set(state_a[index]) == {"momentum_buffer", "momentum_kd_buffer"}  # KD: every parameter gets both
        for key, value in state_a[index].items():
            assert torch.equal(value, state_b[index][key]), (index, key)
    group = a["optimizer"]["param_groups"][0]
    assert group["momentum"] == pytest.approx(0.9 - 0.075) and group["momentum_kd"] == pytest.approx(0.9 + 0.075)
    history = [json.loads(open(os.path.join(prefix, "distill", n, "results.json")).read())["history"]
               for n in ("full", "split")]
    assert [h["test_acc"] for h in history[0]] == [h["test_acc"] for h in history[1]]
    assert [h["train_loss"] for h in history[0]] == [h["train_loss"] for h in history[1]]


def test_dot_trains_on_a_tiny_imagenet_tree(tmp_path):
    write_tiny_imagenet_folder(str(tmp_path / "data"), num_classes=3, train_per_class=4, val_per_class=2)
    torch.manual_seed(0)
    teacher = get_model("ShuffleV2", "tiny_imagenet", 3)
    teacher_ckpt = str(tmp_path / "teacher.pth")
    torch.save({"model": teacher.state_dict()}, teacher_ckpt)
    proc = run_cli(cli_args(**{
        "--cfg": "configs/tiny_imagenet/dot/r18_mv2.yaml", "DATASET.ROOT": str(tmp_path / "data"),
        "DATASET.NUM_WORKERS": "0", "DATASET.TEST.BATCH_SIZE": "6", "SOLVER.BATCH_SIZE": "4", "SOLVER.EPOCHS": "1",
        "SOLVER.DEVICE": "cpu", "DISTILLER.TEACHER": "ShuffleV2", "DISTILLER.TEACHER_CKPT": teacher_ckpt,
        "LOG.PREFIX": str(tmp_path / "out"), "EXPERIMENT.NAME": "tiny"}), cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out" / "dot_tinyimagenet" / "tiny"
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "tiny_imagenet" and results["finished"] and results["student"] == "MobileNetV2"
    assert 0 <= results["best_acc"] <= 100 and len(results["history"]) == 1
    student = get_model("MobileNetV2", "tiny_imagenet", 3)
    student.load_state_dict(torch.load(out / "student_latest", weights_only=True)["model"])
    optimizer = torch.load(out / "latest", weights_only=True)["optimizer"]
    assert optimizer["param_groups"][0]["momentum_kd"] == pytest.approx(0.975)


def test_missing_tiny_imagenet_is_a_clear_error(tmp_path):
    proc = run_cli(cli_args(**{"--cfg": "configs/tiny_imagenet/dot/r18_mv2.yaml", "DATASET.ROOT": str(tmp_path),
                               "SOLVER.DEVICE": "cpu", "LOG.PREFIX": str(tmp_path / "out")}), cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "tiny-imagenet-200" in proc.stderr and "Expected layout" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
