"""Epoch-throughput benchmark: images/s of a full training epoch through the real trainer (data loading,
augmentation, forward, backward, optimizer step), for the DataLoader path vs ``DATASET.GPU_AUGMENT``,
AMP off vs bf16/fp16, channels-last, on CPU, one GPU or under torchrun (DDP; global images/s).

Data: a CIFAR-100-format folder in the real pickle format written to a temporary directory (random,
class-structured images: real CIFAR-100 cannot be downloaded everywhere, and timing does not depend on
the pixels). Teachers get random weights written as an mdistiller-format checkpoint.

    ddkd-bench-epoch --pair resnet32x4 resnet8x4 --methods NONE DKD DDKD --paths loader gpu \
        --amp off bf16 --train-size 4096
"""

from __future__ import annotations

import itertools
import json
import os
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..dataset.cifar_format import write_cifar100_folder
from ..engine.cfg import load_config
from ..engine.checkpoint import save_checkpoint_atomic
from ..engine.distributed import init_runtime
from ..engine.trainer import Trainer
from ..markdown_table import markdown_table as _markdown_table
from ..models import cifar_model_dict
from .measurement import peak_rss_bytes, sync


def _peak_memory_bytes(device: torch.device) -> int:
    """CUDA: ``max_memory_allocated``; CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return peak_rss_bytes()


def measure_epoch(
    method: str,
    teacher: str,
    student: str,
    data_root: str,
    teacher_ckpt: str,
    output_root: str,
    batch_size: int = 64,
    gpu_augment: bool = False,
    amp: str = "off",
    channels_last: bool = False,
    device: str = "auto",
    workers: int = 2,
    epochs: int = 2,
    extra_opts: Sequence[str] = (),
) -> Optional[Dict]:
    """Train ``epochs`` epochs (the first is warm-up) and time the last one's training part.

    Returns the measurement on rank 0 (None on other ranks)."""

    name = f"{method}_{'gpu' if gpu_augment else 'loader'}_{amp}{'_cl' if channels_last else ''}"
    cfg = load_config(None, [
        "DATASET.ROOT", data_root, "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
        "DATASET.GPU_AUGMENT", str(gpu_augment), "DATASET.NUM_WORKERS", str(workers),
        "SOLVER.BATCH_SIZE", str(batch_size), "SOLVER.EPOCHS", str(epochs), "SOLVER.AMP", amp,
        "SOLVER.CHANNELS_LAST", str(channels_last), "SOLVER.DEVICE", device,
        "DISTILLER.TYPE", method, "DISTILLER.TEACHER", teacher, "DISTILLER.STUDENT", student,
        "DISTILLER.TEACHER_CKPT", teacher_ckpt, "LOG.PREFIX", output_root, "EXPERIMENT.NAME", name,
        "LOG.TENSORBOARD_FREQ", "1000000", *extra_opts,
    ])
    trainer = Trainer(cfg, show_progress=False)
    seconds: List[float] = []
    try:
        for epoch in range(1, epochs + 1):
            sync(trainer.device)
            if trainer.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(trainer.device)
            start = time.perf_counter()
            trainer.train_epoch(epoch)
            sync(trainer.device)
            seconds.append(time.perf_counter() - start)
        images = trainer.num_data
        result = {
            "method": method, "teacher": teacher, "student": student,
            "path": "gpu_augment" if gpu_augment else "dataloader", "amp": amp, "channels_last": channels_last,
            "device": str(trainer.device), "world_size": trainer.runtime.world_size, "batch_size": batch_size,
            "workers": 0 if gpu_augment else workers, "train_images": images, "epoch_seconds": seconds[-1],
            "images_per_s": images / seconds[-1], "peak_memory_bytes": _peak_memory_bytes(trainer.device),
        }
    finally:
        trainer.close()
    return result if trainer.runtime.is_main else None


def markdown_table(rows: List[Dict]) -> str:
    """Rows with two ratios: throughput relative to DKD (same path and precision) and relative to the
    DataLoader path (same method and precision)."""
    headers = ["method", "path", "amp", "channels-last", "images/s", "epoch s", "peak memory (MiB)", "×DKD",
               "×DataLoader"]
    speed = {(r["method"], r["path"], r["amp"], r["channels_last"]): r["images_per_s"] for r in rows}

    def ratio(r, key):
        ref = speed.get(key)
        return f"{r['images_per_s'] / ref:.2f}" if ref else "—"

    cells = []
    for r in rows:
        vs_dkd = ratio(r, ("DKD", r["path"], r["amp"], r["channels_last"]))
        vs_loader = ratio(r, (r["method"], "dataloader", r["amp"], r["channels_last"]))
        cells.append([r["method"], r["path"], r["amp"], r["channels_last"], f"{r['images_per_s']:.1f}",
                      f"{r['epoch_seconds']:.2f}", f"{r['peak_memory_bytes'] / 2**20:.0f}", vs_dkd, vs_loader])
    return _markdown_table(headers, cells, align="llll" + "r" * 5)


def prepare_run_folder(workdir: str, teacher: str, train_size: int, device: str = "auto") -> Tuple[str, str]:
    """``(data root, teacher checkpoint)`` under ``workdir``: rank 0 writes a CIFAR-100-format train set of
    ``train_size`` images and a randomly initialised ``teacher`` checkpoint (once); under torchrun the
    process group is started and every rank waits for them."""

    data_root = os.path.join(workdir, "data")
    ckpt = os.path.join(workdir, "teacher.pth")
    if int(os.environ.get("RANK", "0")) == 0 and not os.path.isdir(os.path.join(data_root, "cifar-100-python")):
        write_cifar100_folder(data_root, n_train=train_size, n_test=256)
        save_checkpoint_atomic({"model": cifar_model_dict[teacher][0](num_classes=100).state_dict()}, ckpt)
    if torch.distributed.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        init_runtime(device)
        torch.distributed.barrier()
    return data_root, ckpt


def run_grid(
    teacher: str,
    student: str,
    workdir: str,
    methods: Sequence[str],
    paths: Sequence[str] = ("loader", "gpu"),
    amps: Sequence[str] = ("off",),
    channels_last: Sequence[str] = ("off",),
    train_size: int = 2048,
    **options,
) -> List[Dict]:
    """:func:`measure_epoch` for every (method, path ``loader``/``gpu``, amp, channels-last ``off``/``on``),
    each row printed as one JSON line when measured; returns the rows of rank 0 (none on other ranks).
    ``options``: ``batch_size``, ``device``, ``workers``, ``epochs`` of :func:`measure_epoch`."""
    data_root, ckpt = prepare_run_folder(workdir, teacher, train_size, options.get("device", "auto"))
    rows = []
    for method, path, amp, cl in itertools.product(methods, paths, amps, channels_last):
        row = measure_epoch(method, teacher, student, data_root, ckpt, os.path.join(workdir, "out"),
                            gpu_augment=path == "gpu", amp=amp, channels_last=cl == "on", **options)
        if row is not None:
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows
