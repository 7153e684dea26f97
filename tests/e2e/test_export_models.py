"""``export_run`` for every model of the CIFAR zoo (and the Tiny-ImageNet zoo, and ImageNet's MobileNetV1), in
both formats: a run folder as training leaves it (config.yaml, student_best) holding a student whose
BatchNorm statistics are calibrated (so its logits are of a trained model's scale), exported, checked by the
tool, and checked again here by loading the file with its runtime and comparing on fresh images at two batch
sizes. The data sets are not here: the tool checks on random images of the registered size. The deeper
ImageNet ResNets are measured in docs/usage.md (float32 rounding alone is about 2e-4 in ResNet101)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.export import FORMATS, StudentLogits, export_run
from mdistiller_ddkd.export.formats import onnx_runner, pt2_runner
from mdistiller_ddkd.models import get_model, model_zoo
from tests.helpers import require_extra

ZOOS = {"cifar100": ("cifar", 32, 100), "tiny_imagenet": ("tiny_imagenet", 64, 200),
        "imagenet": ("imagenet", 224, 1000)}
MODELS = ([("cifar100", m) for m in model_zoo("cifar")] + [("tiny_imagenet", m) for m in model_zoo("tiny_imagenet")]
          + [("imagenet", "MobileNetV1")])


def calibrated(model: str, dataset: str, seed: int = 0) -> torch.nn.Module:
    """A model whose BatchNorm running statistics are its batch statistics on random images (eval mode)."""
    zoo, size, classes = ZOOS[dataset]
    torch.manual_seed(seed)
    net = get_model(model, zoo, classes)
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(8, 3, size, size))
    return net.eval()


def run_folder(tmp_path, dataset: str, model: str) -> str:
    """config.yaml and student_best as a training run of ``model`` on ``dataset`` leaves them."""
    folder = tmp_path / "run"
    folder.mkdir()
    cfg = load_config(None, ["DATASET.TYPE", dataset, "DISTILLER.TEACHER", model, "DISTILLER.STUDENT", model,
                             "DATASET.ROOT", str(tmp_path / "no_data")])
    (folder / "config.yaml").write_text(cfg.dump())
    torch.save({"model": calibrated(model, dataset).state_dict(), "epoch": 7, "test_acc": 1.0},
               str(folder / "student_best"))
    return str(folder)


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
@pytest.mark.parametrize("dataset, model", MODELS)
def test_every_model_exports_and_reproduces_its_logits(dataset, model, fmt, tmp_path):
    if fmt == "onnx":
        for module in ("onnx", "onnxscript", "onnxruntime"):
            require_extra(module, "export")
    out = str(tmp_path / f"student.{fmt}")
    report = export_run(run_folder(tmp_path, dataset, model), FORMATS[fmt], out, count=6, batch_size=4)
    assert report.max_abs_diff <= 1e-4 and report.checked_on.startswith("6 random images")
    _, size, classes = ZOOS[dataset]
    assert json.load(open(out + ".json"))["input_size"] == [3, size, size] and report.preprocessing["epoch"] == 7
    with open(out, "rb") as f:
        run = (onnx_runner if fmt == "onnx" else pt2_runner)(f.read())
    reference = StudentLogits(calibrated(model, dataset)).eval()
    for n in (1, 3):
        images = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            expected = reference(images)
        got = run(images)
        assert got.shape == (n, classes) and float((got - expected).abs().max()) <= 1e-4
    assert os.path.getsize(out) == report.size_bytes
