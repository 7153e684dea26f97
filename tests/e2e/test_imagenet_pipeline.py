"""ImageNet through ImageFolder: a tiny tree trains one epoch through tools/train.py; missing folders fail clearly."""

import json
import os

import numpy as np
from PIL import Image

from tests.helpers import TRAIN, run_cli


def write_image_folder(root, classes=("n01", "n02", "n03"), per_class=2, size=64):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, name in enumerate(classes):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(per_class):
                pixels = np.clip(rng.normal(60 + 60 * c, 30, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.JPEG"))
    return root


def test_imagenet_folder_trains_one_epoch(tmp_path):
    root = write_image_folder(str(tmp_path / "imagenet"))
    proc = run_cli([TRAIN, "DATASET.TYPE", "imagenet", "DATASET.ROOT", root, "DATASET.NUM_WORKERS", "0",
                    "DATASET.TEST.BATCH_SIZE", "3", "SOLVER.BATCH_SIZE", "3", "SOLVER.EPOCHS", "1",
                    "SOLVER.DEVICE", "cpu", "DISTILLER.TYPE", "NONE", "DISTILLER.STUDENT", "ResNet18",
                    "LOG.PREFIX", str(tmp_path / "out"), "EXPERIMENT.NAME", "in"], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "distill" / "in" / "results.json").read_text())
    assert results["finished"] and results["dataset"] == "imagenet"
    assert 0 <= results["last_acc"] <= 100 and results["last_acc_top5"] == 100.0  # 3 classes: top-5 is all


def test_missing_imagenet_folders_are_a_clear_error(tmp_path):
    proc = run_cli([TRAIN, "DATASET.TYPE", "imagenet", "DATASET.ROOT", str(tmp_path / "none"),
                    "DISTILLER.STUDENT", "ResNet18", "LOG.PREFIX", str(tmp_path)], cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "ImageNet train folder not found" in proc.stderr and "Expected layout" in proc.stderr
