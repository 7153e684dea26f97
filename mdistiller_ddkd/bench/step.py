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

import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..dataset.registry import dataset_info
from ..distillers import get_distiller_class
from ..engine.cfg import load_config, resolve_config_path
from ..models import get_model as build_model
from ..tables import markdown_table as _markdown_table
from .common import current_rss_bytes, peak_rss_bytes, sync

DEFAULT_METHODS = ("NONE", "KD", "DKD", "DIFFKD", "DDKD")
NUM_CLASSES = {"cifar100": 100, "imagenet": 1000}


def pair_config_file(method: str, pair: Optional[str], dataset: str) -> Optional[str]:
    """``configs/cifar100/<method>/<pair>.yaml`` (or ``configs/imagenet/<pair>/<method>.yaml``) if shipped."""
    if not pair:
        return None

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
            sync(dev)
            start = time.perf_counter()
            step()
            sync(dev)
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
        base = current_rss_bytes() or 0
    for _ in range(steps):
        step()
    sync(dev)
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
    headers = ["method", "median step (ms)", "× DKD (medians)", "× DKD (paired)", "peak memory (MiB)", "extra params"]
    rows = []
    for r in results:
        ratio = f"{r['ratio_to_dkd']:.2f}" if r.get("ratio_to_dkd") else "–"
        paired = f"{r['paired_ratio_to_dkd']:.2f}" if r.get("paired_ratio_to_dkd") else "–"
        memory = f"{r['peak_memory_bytes'] / 2**20:.1f}" if r.get("peak_memory_bytes") is not None else "–"
        rows.append([r["method"], f"{1000 * r['median_step_s']:.1f}", ratio, paired, memory,
                     f"{r['extra_parameters']:,}"])
    return _markdown_table(headers, rows, align="l" + "r" * 5)
