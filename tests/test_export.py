"""``ddkd-export`` on a finished tiny run: the ONNX and ``.pt2`` files hold the student alone with a dynamic
batch axis and reproduce the checkpoint's logits (checked here independently, with ONNX Runtime and
``torch.export.load``), carry their preprocessing, and every refusal is one line with nothing written. An
export that does not compute the checkpoint's logits is exit 1 and leaves no file. Every CIFAR model:
``tests/e2e/test_export_models.py``."""

from __future__ import annotations

import json
import os
import sys

import pytest
import torch

from mdistiller_ddkd.cli.export import main as export_main
from mdistiller_ddkd.dataset.common import CIFAR100_MEAN, CIFAR100_STD
from mdistiller_ddkd.dataset.registry import build_splits
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.export import FORMATS, ExportFormat
from mdistiller_ddkd.export.formats import PT2_PREPROCESSING, onnx_runner
from mdistiller_ddkd.models import get_model
from tests.helpers import assert_one_line_error, call_cli, registered, require_extra


def _student(run_dir: str, which: str = "best") -> torch.nn.Module:
    model = get_model("resnet8", "cifar", 10)
    model.load_state_dict(torch.load(os.path.join(run_dir, f"student_{which}"), weights_only=True)["model"])
    return model.eval()


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _check_preprocessing(info: dict, run_dir: str) -> None:
    cfg = load_config(os.path.join(run_dir, "config.yaml"))
    mean, std = build_splits(cfg).mean_std
    assert info["input_size"] == [3, 32, 32] and info["num_classes"] == 10 and info["model"] == "resnet8"
    assert info["mean"] == pytest.approx(list(mean)) and info["std"] == pytest.approx(list(std))
    assert (info["input"], info["output"], info["checkpoint"]) == ("image", "logits", "student_best")


@pytest.mark.slow  # ONNX's exporter: ~7 s
def test_onnx_export_reproduces_the_student_with_a_dynamic_batch(run_copy, capsys, tmp_path):
    ort = require_extra("onnxruntime", "export")
    onnx = require_extra("onnx", "export")
    _, run_dir = run_copy
    out = str(tmp_path / "deploy" / "student.onnx")
    code, printed, err = call_cli(capsys, export_main, run_dir, "--format", "onnx", "--out", out)
    assert code == 0, err
    assert "the first 10 images of the synthetic test split" in printed and "78,042 parameters" in printed
    diff = float(printed.split("export vs checkpoint: ")[1].split()[0])
    assert 0 <= diff <= 1e-4
    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    student = _student(run_dir)
    for n in (1, 3, 17):
        images = _images(n, n)
        with torch.no_grad():
            expected = student(images)[0].numpy()
        got = session.run(["logits"], {"image": images.numpy()})[0]
        assert got.shape == (n, 10) and abs(got - expected).max() <= 1e-4
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == ["image"]  # the student alone: one input, one output
    embedded = {p.key: json.loads(p.value) for p in model.metadata_props}
    sidecar = json.load(open(out + ".json"))
    _check_preprocessing(sidecar, run_dir)
    assert {k: sidecar[k] for k in embedded} == embedded and sidecar["max_abs_diff"] == pytest.approx(diff, rel=1e-2)


def test_pt2_export_of_the_latest_student_reproduces_it(run_copy, capsys, tmp_path):
    _, run_dir = run_copy
    out = str(tmp_path / "student.pt2")
    code, printed, err = call_cli(capsys, export_main, run_dir, "--format", "pt2", "--out", out,
                                  "--checkpoint", "latest")
    assert code == 0, err
    extra = {PT2_PREPROCESSING: ""}
    program = torch.export.load(out, extra_files=extra)
    student = _student(run_dir, "latest")
    for n in (1, 5):
        images = _images(n, 10 + n)
        with torch.no_grad():
            torch.testing.assert_close(program.module()(images), student(images)[0], rtol=0, atol=1e-5)
    info = json.loads(extra[PT2_PREPROCESSING])
    assert info["checkpoint"] == "student_latest" and info == {k: v for k, v in json.load(open(out + ".json")).items()
                                                               if k in info}


def test_without_the_data_set_it_checks_on_random_images_and_says_so(run_copy, capsys, tmp_path):
    _, run_dir = run_copy
    out = str(tmp_path / "student.pt2")
    code, printed, err = call_cli(capsys, export_main, run_dir, "--format", "pt2", "--out", out, "--images", "12",
                                  "DATASET.TYPE", "cifar100", "DATASET.ROOT", str(tmp_path / "no_data"))
    assert code == 0, err
    assert "12 random images of 3×32×32 (the cifar100 test split is not here" in printed
    info = json.load(open(out + ".json"))
    assert info["mean"] == pytest.approx(list(CIFAR100_MEAN)) and info["std"] == pytest.approx(list(CIFAR100_STD))


def test_refusals_are_one_line_and_write_nothing(run_copy, capsys, tmp_path, monkeypatch):
    _, run_dir = run_copy
    out = tmp_path / "out" / "student.pt2"
    os.remove(os.path.join(run_dir, "student_best"))
    code, _, err = call_cli(capsys, export_main, run_dir, "--format", "pt2", "--out", str(out))
    assert_one_line_error(code, err, "has no checkpoint 'student_best'")
    code, _, err = call_cli(capsys, export_main, str(tmp_path), "--format", "pt2", "--out", str(out))
    assert_one_line_error(code, err, "not a run folder")
    code, _, err = call_cli(capsys, export_main, run_dir, "--format", "pt2", "--out", str(tmp_path),
                            "--checkpoint", "latest")
    assert_one_line_error(code, err, "is a folder")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as without the [export] extra
    code, _, err = call_cli(capsys, export_main, run_dir, "--format", "onnx", "--out", str(out), "--checkpoint",
                            "latest")
    assert_one_line_error(code, err, "pip install 'mdistiller-ddkd[export]'")
    assert not (tmp_path / "out").exists()


def test_an_export_that_computes_other_logits_is_exit_1_and_leaves_no_file(run_copy, capsys, tmp_path):
    """A real ONNX export run by a runtime that is off by 1e-3: the tool's own check refuses it."""
    require_extra("onnxruntime", "export")
    _, run_dir = run_copy
    real = FORMATS["onnx"]

    def shifted(data: bytes):
        run = onnx_runner(data)
        return lambda images: run(images) + 1e-3

    out = tmp_path / "student.onnx"
    with registered(FORMATS, "onnx", ExportFormat("onnx", ".onnx", real.modules, real.extra, real.serialize, shifted,
                                                  "ONNX Runtime (shifted)")):
        code, _, err = call_cli(capsys, export_main, run_dir, "--format", "onnx", "--out", str(out))
    assert code == 1 and "Traceback" in err and "ExportMismatchError" in err and "bug:" in err
    assert "differs from the checkpoint by up to 0.001" in err and "nothing was written" in err
    assert sorted(os.listdir(tmp_path)) == ["copy"]  # the run's copy only: no export, no sidecar, no temporary file
