"""Exporting a run's student: the student alone (image -> logits; no teacher, no method modules), the
images the export is checked on, its preprocessing, and the check itself (the export, loaded back by its
own runtime, must reproduce the checkpoint's logits within ``TOLERANCE``; otherwise nothing is kept)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import nn

from ..dataset.registry import build_splits, dataset_info
from ..engine.runs import STUDENT_CHECKPOINTS, load_student, open_run
from ..errors import CheckpointMismatchError, ConfigError, DataFileError, MissingInputError
from ..fileio import atomic_write, write_text_atomic
from .formats import INPUT_NAME, OUTPUT_NAME, ExportFormat, Runner

#: the largest max |logit difference| an export may show against the checkpoint (``--tolerance``'s default)
TOLERANCE = 1e-4
#: the preprocessing is also written beside the export, as ``<FILE>.json``
SIDECAR_SUFFIX = ".json"


class ExportMismatchError(RuntimeError):
    """The export, loaded back by its runtime, does not compute the checkpoint's logits. Not a user error:
    a defect of the exporter, the runtime or this package (exit code 1, as every bug); no file is kept."""


class StudentLogits(nn.Module):
    """The student as deployment sees it: ``image -> logits`` (the zoo's models return ``(logits, feats)``)."""

    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.student(image)[0]


@dataclass
class CheckImages:
    """The images an export is checked on, what they are, and the normalisation they carry."""

    images: torch.Tensor
    source: str
    mean_std: Optional[Tuple[Sequence[float], Sequence[float]]]
    num_classes: Optional[int] = None


def check_images(cfg, count: int, seed: int = 0) -> CheckImages:
    """The first ``count`` images of the dataset's test split when it is here; otherwise ``count`` random
    images (standard normal, i.e. already normalised) of the dataset's registered size."""
    info = dataset_info(cfg.DATASET.TYPE)
    try:
        splits = build_splits(cfg)
    except (MissingInputError, DataFileError) as err:
        height, width = info.input_size
        images = torch.randn(count, 3, height, width, generator=torch.Generator().manual_seed(seed))
        return CheckImages(images, f"{count} random images of 3×{height}×{width} (the {cfg.DATASET.TYPE} test split "
                           f"is not here: {str(err).splitlines()[0][:160]})", info.mean_std)
    count = min(count, len(splits.test))
    images = torch.stack([splits.test[i][0] for i in range(count)])
    return CheckImages(images, f"the first {count} images of the {cfg.DATASET.TYPE} test split",
                       splits.mean_std or info.mean_std, splits.num_classes)


def preprocessing(cfg, images: CheckImages, num_classes: int, extra: Dict) -> Dict:
    """What a deployment needs to feed the export: input name, layout and size, mean/std, classes."""
    mean, std = ([float(v) for v in part] for part in images.mean_std) if images.mean_std else (None, None)
    return {"input": INPUT_NAME, "output": OUTPUT_NAME, "layout": "NCHW float32, RGB in [0, 1], then (x - mean) / std",
            "input_size": [3, *images.images.shape[-2:]], "mean": mean, "std": std, "num_classes": num_classes,
            "model": cfg.DISTILLER.STUDENT, "dataset": cfg.DATASET.TYPE, **extra}


def max_abs_diff(run: Runner, module: nn.Module, images: torch.Tensor, batch_size: int) -> float:
    """The largest |export − checkpoint| logit over ``images`` in batches of ``batch_size``, and a batch of
    one (the batch axis is dynamic)."""
    worst = 0.0
    batches = [images[i:i + batch_size] for i in range(0, len(images), batch_size)] + [images[:1]]
    with torch.no_grad():
        for batch in batches:
            expected = module(batch)
            worst = max(worst, float((run(batch.contiguous()).to(expected.dtype) - expected).abs().max()))
    return worst


@dataclass
class ExportReport:
    """What ``export_run`` did."""

    path: str
    sidecar: str
    format: str
    runtime: str
    checked_on: str
    max_abs_diff: float
    size_bytes: int
    parameters: int
    preprocessing: Dict = field(default_factory=dict)


def _check_output(out: str) -> None:
    if os.path.isdir(out):
        raise ConfigError(f"--out {out} is a folder; give the file to write (e.g. {os.path.join(out, 'student.onnx')})")


def export_run(run_dir: str, fmt: ExportFormat, out: str, which: str = "best", opts: Sequence[str] = (),
               count: int = 256, batch_size: int = 64, tolerance: float = TOLERANCE) -> ExportReport:
    """Export the student of ``run_dir``'s ``student_<which>`` to ``out`` in ``fmt``, check it with ``fmt``'s
    runtime on ``count`` images and only then write it (and ``out.json``); ``ExportMismatchError`` above
    ``tolerance`` (nothing written)."""
    fmt.require()
    _check_output(out)
    run = open_run(run_dir, ["DATASET.DOWNLOAD", "False", *opts])  # never download a data set to check an export
    student, epoch = load_student(run, which)
    images = check_images(run.cfg, count)
    num_classes = student_classes(student, images)
    module = StudentLogits(student).eval()
    info = preprocessing(run.cfg, images, num_classes, {"checkpoint": STUDENT_CHECKPOINTS[which], "epoch": epoch,
                                                        "method": run.cfg.DISTILLER.TYPE})
    data = fmt.serialize(module, images.images[:2], info)
    diff = max_abs_diff(fmt.load(data), module, images.images, batch_size)
    if not diff <= tolerance:
        raise ExportMismatchError(f"the {fmt.name} export of {run_dir} ({run.cfg.DISTILLER.STUDENT}) loaded back by "
                                  f"{fmt.runtime} differs from the checkpoint by up to {diff:.3g} in the logits "
                                  f"(tolerance {tolerance:g}) on {images.source}; nothing was written")
    atomic_write(out, lambda f: f.write(data))
    write_text_atomic(out + SIDECAR_SUFFIX, json.dumps({**info, "format": fmt.name, "max_abs_diff": diff,
                                                        "tolerance": tolerance, "checked_on": images.source},
                                                       indent=1) + "\n")
    parameters = sum(p.numel() for p in student.parameters())
    return ExportReport(out, out + SIDECAR_SUFFIX, fmt.name, fmt.runtime, images.source, diff, len(data), parameters,
                        info)


def student_classes(student: nn.Module, images: CheckImages) -> int:
    """The student's number of outputs; it must equal the test split's number of classes when that is here."""
    with torch.no_grad():
        num_classes = int(student(images.images[:1])[0].shape[1])
    if images.num_classes is not None and images.num_classes != num_classes:
        raise CheckpointMismatchError(f"the student has {num_classes} outputs but the test split {images.num_classes} "
                                      f"classes; check DATASET.* of the run")
    return num_classes


__all__ = ["TOLERANCE", "CheckImages", "ExportMismatchError", "ExportReport", "StudentLogits",
           "check_images", "export_run", "max_abs_diff", "preprocessing"]
