"""Epoch-throughput benchmark: images/s of a full training epoch through the real trainer (data loading,
augmentation, forward, backward, optimizer step), for the DataLoader path vs ``DATASET.GPU_AUGMENT``,
AMP off vs bf16/fp16, channels-last, on CPU, one GPU or under torchrun (DDP; global images/s).

Data: a CIFAR-100-format folder in the real pickle format written to a temporary directory (random,
class-structured images: real CIFAR-100 cannot be downloaded everywhere, and timing does not depend on
the pixels). Teachers get random weights written as an mdistiller-format checkpoint.

    python tools/bench_epoch.py --pair resnet32x4 resnet8x4 --methods NONE DKD DDKD --paths loader gpu \
        --amp off bf16 --train-size 4096
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

import torch

from .bench import peak_rss_bytes


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
    from .cfg import load_config
    from .trainer import Trainer

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
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
                torch.cuda.reset_peak_memory_stats(trainer.device)
            start = time.perf_counter()
            trainer.train_epoch(epoch)
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
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
    lines = ["| method | path | amp | channels-last | images/s | epoch s | peak memory (MiB) | ×DKD | ×DataLoader |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    speed = {(r["method"], r["path"], r["amp"], r["channels_last"]): r["images_per_s"] for r in rows}

    def ratio(r, key):
        ref = speed.get(key)
        return f"{r['images_per_s'] / ref:.2f}" if ref else "—"

    for r in rows:
        vs_dkd = ratio(r, ("DKD", r["path"], r["amp"], r["channels_last"]))
        vs_loader = ratio(r, (r["method"], "dataloader", r["amp"], r["channels_last"]))
        lines.append(f"| {r['method']} | {r['path']} | {r['amp']} | {r['channels_last']} | {r['images_per_s']:.1f} | "
                     f"{r['epoch_seconds']:.2f} | {r['peak_memory_bytes'] / 2**20:.0f} | {vs_dkd} | {vs_loader} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="ddkd-bench-epoch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", nargs=2, default=["resnet32x4", "resnet8x4"], metavar=("TEACHER", "STUDENT"))
    parser.add_argument("--methods", nargs="+", default=["NONE", "DKD", "DDKD"])
    parser.add_argument("--paths", nargs="+", default=["loader", "gpu"], choices=["loader", "gpu"])
    parser.add_argument("--amp", nargs="+", default=["off"], choices=["off", "bf16", "fp16"])
    parser.add_argument("--channels-last", nargs="+", default=["off"], choices=["off", "on"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=2048, help="images in the CIFAR-format train set")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per setting; the last one is timed")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (the loader path)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", default="", help="also write the results to this file")
    args = parser.parse_args(argv)

    from ..dataset.cifar_format import write_cifar100_folder
    from ..models import cifar_model_dict
    from .checkpoint import save_checkpoint_atomic

    rank = int(os.environ.get("RANK", "0"))
    with tempfile.TemporaryDirectory(prefix="ddkd_bench_") as local_tmp:
        # under torchrun every rank must see the same files: use a folder named after the launch
        workdir = os.environ.get("DDKD_BENCH_DIR") or local_tmp
        data_root = os.path.join(workdir, "data")
        ckpt = os.path.join(workdir, "teacher.pth")
        if rank == 0 and not os.path.isdir(os.path.join(data_root, "cifar-100-python")):
            write_cifar100_folder(data_root, n_train=args.train_size, n_test=256)
            save_checkpoint_atomic({"model": cifar_model_dict[args.pair[0]][0](num_classes=100).state_dict()}, ckpt)
        if torch.distributed.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from .distributed import init_runtime

            init_runtime(args.device)
            torch.distributed.barrier()
        rows = []
        for method, path, amp, cl in itertools.product(args.methods, args.paths, args.amp, args.channels_last):
            row = measure_epoch(method, args.pair[0], args.pair[1], data_root, ckpt, os.path.join(workdir, "out"),
                                batch_size=args.batch_size, gpu_augment=path == "gpu", amp=amp,
                                channels_last=cl == "on", device=args.device, workers=args.workers,
                                epochs=args.epochs)
            if row is not None:
                rows.append(row)
                print(json.dumps(row), flush=True)
        if rank == 0:
            print(markdown_table(rows))
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
