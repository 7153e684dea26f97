"""Training-step benchmark: median wall time and peak memory of one full step (forward, backward,
optimizer step) of several distillers on one teacher/student pair, on random data.

Timing: every method is built in this process and the timed steps are interleaved round-robin
(method A step, method B step, ...), so that a change in machine load during the run affects all methods
alike and the ratios stay meaningful on a shared machine.

Memory: each method runs a few steps in its own spawned process. CPU: the process's peak resident set
size (``ru_maxrss``) minus its resident size just before the first step ("peak RSS delta"); CUDA:
``torch.cuda.max_memory_allocated`` minus the memory allocated before the first step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

DEFAULT_METHODS = ("NONE", "KD", "DKD", "DIFFKD", "DDKD")
NUM_CLASSES = {"cifar100": 100, "imagenet": 1000}


def _current_rss_bytes() -> Optional[int]:
    """Resident set size now (Linux ``/proc/self/statm``); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def pair_config_file(method: str, pair: Optional[str], dataset: str) -> Optional[str]:
    """``configs/cifar100/<method>/<pair>.yaml`` (or ``configs/imagenet/<pair>/<method>.yaml``) if shipped."""
    if not pair:
        return None
    from .cfg import resolve_config_path

    rel = (
        f"configs/imagenet/{pair}/{method.lower()}.yaml"
        if dataset == "imagenet"
        else f"configs/cifar100/{method.lower()}/{pair}.yaml"
    )
    try:
        return resolve_config_path(rel)
    except FileNotFoundError:
        return None


def build_step(
    method: str,
    teacher: str,
    student: str,
    dataset: str = "cifar100",
    batch_size: int = 64,
    device: str = "cpu",
    cfg_file: Optional[str] = None,
    seed: int = 0,
    amp: str = "off",
    channels_last: bool = False,
) -> Tuple[Callable[[], None], int]:
    """``(step, extra parameters)``: ``step()`` runs one SGD training step of ``method`` (default config,
    then ``cfg_file``, with randomly initialised models) on a fixed random batch, under autocast when
    ``amp`` is ``bf16``/``fp16`` (fp16 with a gradient scaler) and channels-last when asked."""
    from ..distillers import get_distiller_class
    from ..dataset.registry import dataset_info
    from ..models import get_model as build_model
    from .cfg import load_config

    torch.manual_seed(seed)
    dev = torch.device(device)
    opts = ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", teacher, "DISTILLER.STUDENT", student,
            "DATASET.TYPE", dataset]
    cfg = load_config(cfg_file, opts)
    num_classes = NUM_CLASSES[dataset]
    cls = get_distiller_class(method)
    student_model = build_model(student, dataset, num_classes).to(dev)
    teacher_model = build_model(teacher, dataset, num_classes).to(dev) if cls.needs_teacher else None
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    distiller = cls.build(student_model, teacher_model, cfg, batch_size).to(dev, memory_format=memory_format).train()
    optimizer = torch.optim.SGD(distiller.get_learnable_parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype is torch.float16)
    size = dataset_info(dataset).input_size[0]
    image = torch.randn(batch_size, 3, size, size, device=dev).contiguous(memory_format=memory_format)
    target = torch.randint(0, num_classes, (batch_size,), device=dev)
    index = torch.arange(batch_size, device=dev)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            _, losses = distiller(image=image, target=target, epoch=30, index=index)
        scaler.scale(sum(losses.values())).backward()
        scaler.step(optimizer)
        scaler.update()

    return step, int(distiller.get_extra_parameters())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_times(
    methods: Sequence[str],
    teacher: str,
    student: str,
    pair: Optional[str] = None,
    dataset: str = "cifar100",
    batch_size: int = 64,
    steps: int = 20,
    warmup: int = 3,
    device: str = "cpu",
    amp: str = "off",
    channels_last: bool = False,
) -> Dict[str, Dict]:
    """Per method: the step times (s) of ``steps`` interleaved timed steps after ``warmup`` steps each."""
    dev = torch.device(device)
    runners = {}
    for method in methods:
        step, extra = build_step(method, teacher, student, dataset, batch_size, device,
                                 pair_config_file(method, pair, dataset), amp=amp, channels_last=channels_last)
        runners[method] = (step, extra)
    for step, _ in runners.values():
        for _ in range(warmup):
            step()
    times: Dict[str, List[float]] = {m: [] for m in methods}
    for _ in range(steps):
        for method, (step, _) in runners.items():
            _sync(dev)
            start = time.perf_counter()
            step()
            _sync(dev)
            times[method].append(time.perf_counter() - start)
    return {m: {"times_s": times[m], "extra_parameters": runners[m][1]} for m in methods}


def measure_memory(
    method: str,
    teacher: str,
    student: str,
    pair: Optional[str] = None,
    dataset: str = "cifar100",
    batch_size: int = 64,
    steps: int = 2,
    device: str = "cpu",
    threads: int = 0,
    amp: str = "off",
    channels_last: bool = False,
) -> Tuple[int, str]:
    """(peak memory in bytes of ``steps`` training steps, how it was measured). Meant for a fresh process."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    step, _ = build_step(method, teacher, student, dataset, batch_size, device, pair_config_file(method, pair, dataset),
                         amp=amp, channels_last=channels_last)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = _current_rss_bytes() or 0
    for _ in range(steps):
        step()
    _sync(dev)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) - base, "cuda max_memory_allocated delta"
    return peak_rss_bytes() - base, "peak RSS delta (ru_maxrss - RSS before step 1)"


def run_benchmark(
    teacher: str,
    student: str,
    methods: Sequence[str] = DEFAULT_METHODS,
    pair: Optional[str] = None,
    dataset: str = "cifar100",
    batch_size: int = 64,
    steps: int = 20,
    warmup: int = 3,
    device: str = "cpu",
    threads: int = 0,
    memory: bool = True,
    amp: str = "off",
    channels_last: bool = False,
) -> List[Dict]:
    """Timings (interleaved, this process) and peak memory (one spawned process per method) of every
    method, with each median step time's ratio to DKD's when DKD is among the methods."""
    if threads > 0:
        torch.set_num_threads(threads)
    timed = measure_times(methods, teacher, student, pair, dataset, batch_size, steps, warmup, device,
                          amp=amp, channels_last=channels_last)
    results = []
    for method in methods:
        peak, how = None, None
        if memory:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                peak, how = pool.submit(
                    measure_memory, method, teacher, student, pair, dataset, batch_size, 2, device, threads,
                    amp, channels_last,
                ).result()
        times = timed[method]["times_s"]
        results.append({
            "method": method,
            "teacher": teacher,
            "student": student,
            "device": device,
            "batch_size": batch_size,
            "amp": amp,
            "channels_last": channels_last,
            "steps": steps,
            "threads": torch.get_num_threads(),
            "median_step_s": statistics.median(times),
            "min_step_s": min(times),
            "step_times_s": [round(t, 5) for t in times],
            "peak_memory_bytes": peak,
            "memory_measure": how,
            "extra_parameters": timed[method]["extra_parameters"],
            "config_file": pair_config_file(method, pair, dataset),
        })
    reference = {r["method"]: r["median_step_s"] for r in results}.get("DKD")
    dkd_times = timed["DKD"]["times_s"] if "DKD" in timed else None
    for r in results:
        r["ratio_to_dkd"] = r["median_step_s"] / reference if reference else None
        # median over rounds of (this method's step / DKD's step in the same round): robust to load drift
        r["paired_ratio_to_dkd"] = (
            statistics.median(a / b for a, b in zip(timed[r["method"]]["times_s"], dkd_times)) if dkd_times else None
        )
    return results


def markdown_table(results: Sequence[Dict]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| method | median step (ms) | × DKD (medians) | × DKD (paired) | peak memory (MiB) | extra params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = f"{r['ratio_to_dkd']:.2f}" if r.get("ratio_to_dkd") else "–"
        paired = f"{r['paired_ratio_to_dkd']:.2f}" if r.get("paired_ratio_to_dkd") else "–"
        memory = f"{r['peak_memory_bytes'] / 2**20:.1f}" if r.get("peak_memory_bytes") is not None else "–"
        lines.append(
            f"| {r['method']} | {1000 * r['median_step_s']:.1f} | {ratio} | {paired} | {memory} | {r['extra_parameters']:,} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Median wall time and peak memory of one distillation training step.")
    p.add_argument("--teacher", required=True, help="teacher model name (e.g. resnet32x4)")
    p.add_argument("--student", required=True, help="student model name (e.g. resnet8x4)")
    p.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="distiller names")
    p.add_argument("--pair", default=None, help="pair whose shipped config files to merge, e.g. res32x4_res8x4")
    p.add_argument("--dataset", default="cifar100", help="a registered DATASET.TYPE (cifar100, imagenet, ...)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20, help="timed steps per method (>= 20 recommended)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per method first")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-method memory processes")
    p.add_argument("--amp", default="off", choices=["off", "bf16", "fp16"], help="autocast precision")
    p.add_argument("--channels-last", action="store_true", help="channels-last models and images")
    p.add_argument("--json", default=None, help="also write the results to this file")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    results = run_benchmark(
        args.teacher, args.student, args.methods, pair=args.pair, dataset=args.dataset,
        batch_size=args.batch_size, steps=args.steps, warmup=args.warmup, device=args.device,
        threads=args.threads, memory=not args.no_memory, amp=args.amp, channels_last=args.channels_last,
    )
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print()
    print(markdown_table(results))
    return 0
