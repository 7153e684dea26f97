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
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..dataset.registry import dataset_info
from ..distillers import get_distiller_class
from ..engine.cfg import load_config, resolve_config_path
from ..markdown_table import markdown_table as _markdown_table
from ..models import get_model as build_model
from .measurement import (
    allocator_environment,
    current_rss_bytes,
    kernel_work,
    make_clock,
    peak_rss_bytes,
    saved_tensor_bytes,
    sync,
)

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


def build_distiller(method: str, teacher: str, student: str, dataset: str = "cifar100", batch_size: int = 64,
                    device: str = "cpu", cfg_file: Optional[str] = None, seed: int = 0, channels_last: bool = False,
                    opts: Sequence[str] = ()) -> Tuple[torch.nn.Module, Dict[str, torch.Tensor]]:
    """``(distiller, batch)``: ``method`` (default config, then ``cfg_file``, then ``opts``) on randomly
    initialised models, in train mode on ``device``, and a fixed random batch (``image``, ``target``,
    ``index``) of its dataset's image size."""
    torch.manual_seed(seed)
    dev = torch.device(device)
    cfg = load_config(cfg_file, ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", teacher, "DISTILLER.STUDENT",
                                 student, "DATASET.TYPE", dataset, *opts])
    num_classes = NUM_CLASSES[dataset]
    cls = get_distiller_class(method)
    student_model = build_model(student, dataset, num_classes).to(dev)
    teacher_model = build_model(teacher, dataset, num_classes).to(dev) if cls.needs_teacher else None
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    distiller = cls.build(student_model, teacher_model, cfg, batch_size).to(dev, memory_format=memory_format).train()
    if cfg.SOLVER.COMPILE:
        distiller.compile()
    size = dataset_info(dataset).input_size[0]
    batch = {"image": torch.randn(batch_size, 3, size, size, device=dev).contiguous(memory_format=memory_format),
             "target": torch.randint(0, num_classes, (batch_size,), device=dev),
             "index": torch.arange(batch_size, device=dev)}
    return distiller, batch


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
    opts: Sequence[str] = (),
) -> Tuple[Callable[[], None], int, Callable[[], Dict]]:
    """``(step, extra parameters, forward)``: ``step()`` runs one SGD training step of ``method``
    (``build_distiller``) on its fixed batch, under autocast when ``amp`` is ``bf16``/``fp16`` (fp16 with a
    gradient scaler) and channels-last when asked; ``forward()`` is the step's forward alone (its losses,
    graphs attached)."""
    distiller, batch = build_distiller(method, teacher, student, dataset, batch_size, device, cfg_file, seed,
                                       channels_last, opts)
    dev = torch.device(device)
    optimizer = torch.optim.SGD(distiller.get_learnable_parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    amp_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype is torch.float16)

    def forward() -> Dict:
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            return distiller(epoch=30, **batch)[1]

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(sum(forward().values())).backward()
        scaler.step(optimizer)
        scaler.update()

    return step, int(distiller.get_extra_parameters()), forward


def measure_times(methods: Sequence[str], teacher: str, student: str, pair: Optional[str] = None,
                  dataset: str = "cifar100", batch_size: int = 64, steps: int = 20, warmup: int = 3,
                  device: str = "cpu", amp: str = "off", channels_last: bool = False, repeats: int = 1,
                  clock: str = "wall", opts: Sequence[str] = ()) -> Dict[str, Dict]:
    """Per method: ``repeats`` lists of ``steps`` step times (s), the methods' steps interleaved round-robin
    in every repeat (after ``warmup`` steps each), and its extra parameters."""
    dev = torch.device(device)
    runners = {}
    for method in methods:
        step, extra, _ = build_step(method, teacher, student, dataset, batch_size, device,
                                    pair_config_file(method, pair, dataset), amp=amp, channels_last=channels_last,
                                    opts=opts)
        runners[method] = (step, extra)
    for step, _ in runners.values():
        for _ in range(warmup):
            step()
    time_one = make_clock(clock, dev)
    times: Dict[str, List[List[float]]] = {m: [] for m in methods}
    kernel: Dict[str, List[Tuple[int, float]]] = {m: [] for m in methods}
    for _ in range(repeats):
        for method in methods:
            times[method].append([])
        for _ in range(steps):
            for method, (step, _) in runners.items():
                faults, system = kernel_work()
                times[method][-1].append(time_one(step))
                faults_after, system_after = kernel_work()
                kernel[method].append((faults_after - faults, system_after - system))
    return {m: {"times_s": times[m], "extra_parameters": runners[m][1],
                "median_page_faults": statistics.median(k[0] for k in kernel[m]),
                "median_system_s": statistics.median(k[1] for k in kernel[m])} for m in methods}


def measure_memory(method: str, teacher: str, student: str, pair: Optional[str] = None, dataset: str = "cifar100",
                   batch_size: int = 64, steps: int = 2, device: str = "cpu", threads: int = 0, amp: str = "off",
                   channels_last: bool = False, opts: Sequence[str] = ()) -> Tuple[int, str, int]:
    """(peak memory in bytes of ``steps`` training steps, how it was measured, the bytes one forward saves for
    backward). Meant for a fresh process."""
    if threads > 0:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    step, _, forward = build_step(method, teacher, student, dataset, batch_size, device,
                                  pair_config_file(method, pair, dataset), amp=amp, channels_last=channels_last,
                                  opts=opts)
    saved: Dict[str, int] = {}
    with saved_tensor_bytes(saved):
        forward()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = current_rss_bytes() or 0
    for _ in range(steps):
        step()
    sync(dev)
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) - base, "cuda max_memory_allocated delta", saved["bytes"]
    return peak_rss_bytes() - base, "peak RSS delta (ru_maxrss - RSS before step 1)", saved["bytes"]


def paired_ratios(times: List[List[float]], reference: List[List[float]]) -> List[float]:
    """Per repeat, the median over rounds of (this step / the reference's step in the same round)."""
    return [statistics.median(a / b for a, b in zip(mine, ref)) for mine, ref in zip(times, reference)]


def _memory_of(method: str, settings: Dict) -> Tuple[Optional[int], Optional[str], Optional[int]]:
    """``measure_memory`` in a fresh spawned process (its peak is its own)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure_memory, method, **settings).result()


def run_benchmark(teacher: str, student: str, methods: Sequence[str] = DEFAULT_METHODS, pair: Optional[str] = None,
                  dataset: str = "cifar100", batch_size: int = 64, steps: int = 20, warmup: int = 3,
                  device: str = "cpu", threads: int = 0, memory: bool = True, amp: str = "off",
                  channels_last: bool = False, repeats: int = 5, clock: str = "wall",
                  opts: Sequence[str] = ()) -> List[Dict]:
    """Timings (interleaved in this process, ``repeats`` times) and peak memory (one spawned process per
    method) of every method. ``paired_ratio_to_dkd`` is the median over repeats of each repeat's median
    per-round ratio to DKD's step: the protocol docs/benchmarks.md reports, robust to load drifting during
    the run."""
    if threads > 0:
        torch.set_num_threads(threads)
    timed = measure_times(methods, teacher, student, pair, dataset, batch_size, steps, warmup, device, amp=amp,
                          channels_last=channels_last, repeats=repeats, clock=clock, opts=opts)
    settings = dict(teacher=teacher, student=student, pair=pair, dataset=dataset, batch_size=batch_size, steps=2,
                    device=device, threads=threads, amp=amp, channels_last=channels_last, opts=tuple(opts))
    dkd = timed["DKD"]["times_s"] if "DKD" in timed else None
    results = []
    for method in methods:
        peak, how, saved = _memory_of(method, settings) if memory else (None, None, None)
        times = timed[method]["times_s"]
        flat = [t for repeat in times for t in repeat]
        per_repeat = paired_ratios(times, dkd) if dkd else None
        results.append({
            "method": method, "teacher": teacher, "student": student, "device": device, "batch_size": batch_size,
            "amp": amp, "channels_last": channels_last, "steps": steps, "repeats": repeats, "clock": clock,
            "threads": torch.get_num_threads(), "options": list(opts),
            "median_step_s": statistics.median(flat), "min_step_s": min(flat),
            "step_times_s": [[round(t, 5) for t in repeat] for repeat in times],
            "peak_memory_bytes": peak, "memory_measure": how, "saved_tensor_bytes": saved,
            "extra_parameters": timed[method]["extra_parameters"],
            "median_page_faults_per_step": timed[method]["median_page_faults"],
            "median_system_s_per_step": round(timed[method]["median_system_s"], 5),
            "allocator_environment": allocator_environment(),
            "config_file": pair_config_file(method, pair, dataset),
            "paired_ratio_to_dkd_per_repeat": [round(r, 4) for r in per_repeat] if per_repeat else None,
            "paired_ratio_to_dkd": statistics.median(per_repeat) if per_repeat else None,
        })
    _relate_to_dkd(results)
    return results


def _relate_to_dkd(results: List[Dict]) -> None:
    """Each method's median step relative to DKD's, and (when measured) whether its peak memory stays within
    DKD's plus what its forward saves beyond DKD's (the diffusion modules' saved tensors, for DDKD)."""
    dkd = next((r for r in results if r["method"] == "DKD"), None)
    for r in results:
        r["ratio_to_dkd"] = r["median_step_s"] / dkd["median_step_s"] if dkd else None
        if dkd is None or r["saved_tensor_bytes"] is None or dkd["saved_tensor_bytes"] is None:
            continue
        r["extra_saved_bytes_vs_dkd"] = r["saved_tensor_bytes"] - dkd["saved_tensor_bytes"]
        if r["peak_memory_bytes"] is not None and dkd["peak_memory_bytes"] is not None:
            r["peak_within_dkd_plus_saved"] = (
                r["peak_memory_bytes"] <= dkd["peak_memory_bytes"] + max(r["extra_saved_bytes_vs_dkd"], 0))


def markdown_table(results: Sequence[Dict]) -> str:
    """The results as a Markdown table (the paired ratio is the protocol's: median over repeats)."""
    headers = ["method", "median step (ms)", "× DKD (medians)", "× DKD (paired)", "peak memory (MiB)",
               "saved for backward (MiB)", "extra params"]
    rows = []
    for r in results:
        ratio = f"{r['ratio_to_dkd']:.3f}" if r.get("ratio_to_dkd") else "–"
        paired = f"{r['paired_ratio_to_dkd']:.3f}" if r.get("paired_ratio_to_dkd") else "–"
        memory = f"{r['peak_memory_bytes'] / 2**20:.1f}" if r.get("peak_memory_bytes") is not None else "–"
        saved = f"{r['saved_tensor_bytes'] / 2**20:.1f}" if r.get("saved_tensor_bytes") is not None else "–"
        rows.append([r["method"], f"{1000 * r['median_step_s']:.1f}", ratio, paired, memory, saved,
                     f"{r['extra_parameters']:,}"])
    return _markdown_table(headers, rows, align="l" + "r" * 6)
