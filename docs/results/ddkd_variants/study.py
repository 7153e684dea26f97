"""The runs of the DDKD-variant study (docs/ddkd.md#variants): every training command, run one at a time and
resumably, with wall and CPU time, and the summary the docs' tables are made from.

    python docs/results/ddkd_variants/study.py list [PATTERN]       # the runs and their status
    python docs/results/ddkd_variants/study.py run PATTERN ...       # run (or resume) the matching runs in order
    python docs/results/ddkd_variants/study.py summary OUT.json      # per-run accuracy + instruments, commands

A run is ``<setting>/<method label>-b<beta>-s<seed>`` (β only where the method has one); PATTERN is a shell
glob over those names. Every run trains with ``OMP_NUM_THREADS=1`` into ``output/study/<setting>/<name>``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
OUTPUT = os.path.join("output", "study")
TIMINGS = os.path.join(OUTPUT, "timings.json")
DEMO_TEACHER = os.path.join(OUTPUT, "teachers", "demo_teacher_r20", "student_best")
FM_TEACHER = os.path.join(OUTPUT, "teachers", "fm_teacher_r20", "student_best")
FM_ROOT = "/usr/share/datasets/fashion-mnist"
#: the study's base configs: the demo recipe the study started from, pinned here (the demo's own configs have
#: changed since; the study's runs must stay comparable with each other)
CONFIGS = os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs"), REPO)
DIAG = ["LOG.DIAGNOSTICS", "True", "LOG.DIAGNOSTICS_BATCH", "32", "LOG.DIAGNOSTICS_FREQ", "0"]

#: setting -> (teacher checkpoint, DKD warm-up epochs, overrides of every run)
SETTINGS: Dict[str, Tuple[str, int, List[str]]] = {
    "demo": (DEMO_TEACHER, 2, []),
    "lowdata": (DEMO_TEACHER, 8, ["DATASET.SYNTHETIC.TRAIN_PER_CLASS", "50", "SOLVER.EPOCHS", "40",
                                  "SOLVER.LR_DECAY_STAGES", "[32]"]),
    "fmnist": (FM_TEACHER, 4, ["DATASET.TYPE", "fashion_mnist", "DATASET.ROOT", FM_ROOT,
                               "DATASET.FASHION_MNIST.TRAIN_PER_CLASS", "200",
                               "DATASET.FASHION_MNIST.TEST_PER_CLASS", "300", "SOLVER.EPOCHS", "16",
                               "SOLVER.LR_DECAY_STAGES", "[12]"]),
}

#: teacher runs: name -> (config, overrides)
TEACHERS: Dict[str, Tuple[str, List[str]]] = {
    "demo_teacher_r20": (CONFIGS + "/teacher.yaml", ["SOLVER.EPOCHS", "20", "SOLVER.LR_DECAY_STAGES", "[15]"]),
    "fm_teacher_r20": (CONFIGS + "/teacher.yaml", [
        "DATASET.TYPE", "fashion_mnist", "DATASET.ROOT", FM_ROOT, "DATASET.FASHION_MNIST.TRAIN_PER_CLASS", "1000",
        "DATASET.FASHION_MNIST.TEST_PER_CLASS", "300", "SOLVER.EPOCHS", "12", "SOLVER.LR_DECAY_STAGES", "[9]"]),
}

#: DDKD variants: label -> DDKD overrides (the paper's DDKD is "ddkd")
VARIANTS: Dict[str, List[str]] = {
    "ddkd": [],
    "ddkd_t0": ["DDKD.TIME_EMBEDDING_INIT", "zero"],
    "ddkd_t0_ls": ["DDKD.TIME_EMBEDDING_INIT", "zero", "DDKD.LOGIT_STANDARDIZE", "True"],
    "ddkd_t0_unit": ["DDKD.TIME_EMBEDDING_INIT", "zero", "DDKD.TARGET_SCALE", "unit"],
    "ddkd_t0_nograd": ["DDKD.TIME_EMBEDDING_INIT", "zero", "DDKD.NOISE_NET_KD_GRAD", "False"],
    "ddkd_t0_ls_nograd": ["DDKD.TIME_EMBEDDING_INIT", "zero", "DDKD.LOGIT_STANDARDIZE", "True",
                          "DDKD.NOISE_NET_KD_GRAD", "False"],
    "ddkd_t0_g9": ["DDKD.TIME_EMBEDDING_INIT", "zero", "DDKD.ADAPTER_INIT_GAMMA", "0.9"],
    "ddkd_ls": ["DDKD.LOGIT_STANDARDIZE", "True"],
    "ddkd_unit": ["DDKD.TARGET_SCALE", "unit"],
    "ddkd_ls_nograd": ["DDKD.LOGIT_STANDARDIZE", "True", "DDKD.NOISE_NET_KD_GRAD", "False"],
    "ddkd_nograd": ["DDKD.NOISE_NET_KD_GRAD", "False"],
    "ddkd_ls_g9": ["DDKD.LOGIT_STANDARDIZE", "True", "DDKD.ADAPTER_INIT_GAMMA", "0.9"],
    "ddkd_g9": ["DDKD.ADAPTER_INIT_GAMMA", "0.9"],
    "ddkd_ls_steps2": ["DDKD.LOGIT_STANDARDIZE", "True", "DDKD.INFERENCE_STEPS", "2"],
    "ddkd_ls_unit": ["DDKD.LOGIT_STANDARDIZE", "True", "DDKD.TARGET_SCALE", "unit"],
}


@dataclass
class Run:
    name: str  #: <setting>/<label>[-b<beta>]-s<seed>
    config: str
    overrides: List[str]

    @property
    def output_dir(self) -> str:
        return os.path.join(OUTPUT, self.name)

    def command(self, resume: bool = False) -> List[str]:
        setting, run = self.name.split("/")
        return [sys.executable, "tools/train.py", "--cfg", self.config, *(["--resume"] if resume else []),
                *self.overrides, "LOG.PREFIX", OUTPUT, "EXPERIMENT.PROJECT", setting, "EXPERIMENT.NAME", run]

    def results(self) -> dict:
        try:
            with open(os.path.join(self.output_dir, "results.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def status(self) -> str:
        if self.results().get("finished"):
            return "finished"
        return "resume" if os.path.isfile(os.path.join(self.output_dir, "latest")) else "new"


def _distill_run(setting: str, label: str, beta: float, seed: int) -> Run:
    teacher, warmup, common = SETTINGS[setting]
    base = ["EXPERIMENT.SEED", str(seed), "DISTILLER.TEACHER_CKPT", teacher, *common, *DIAG]
    if label == "none":
        return Run(f"{setting}/none-s{seed}", CONFIGS + "/none.yaml", base)
    if label == "kd":
        return Run(f"{setting}/kd-s{seed}", CONFIGS + "/kd.yaml", base)
    if label == "diffkd":
        return Run(f"{setting}/diffkd-s{seed}", CONFIGS + "/ddkd.yaml", ["DISTILLER.TYPE", "DIFFKD", *base])
    if label == "dkd":
        return Run(f"{setting}/dkd-b{beta:g}-s{seed}", CONFIGS + "/dkd.yaml",
                   ["DKD.BETA", str(beta), "DKD.WARMUP", str(warmup), *base])
    return Run(f"{setting}/{label}-b{beta:g}-s{seed}", CONFIGS + "/ddkd.yaml",
               ["DDKD.DKD.BETA", str(beta), "DDKD.DKD.WARMUP", str(warmup), *VARIANTS[label], *base])


def all_runs() -> List[Run]:
    runs = [Run(f"teachers/{name}", cfg, overrides) for name, (cfg, overrides) in TEACHERS.items()]
    for setting in SETTINGS:
        for seed in range(5):
            for label in ("none", "kd", "diffkd"):
                runs.append(_distill_run(setting, label, 0.0, seed))
            for beta in (2.0, 8.0):
                for label in ("dkd", *VARIANTS):
                    runs.append(_distill_run(setting, label, beta, seed))
    return runs


def select(pattern: Sequence[str]) -> List[Run]:
    runs = all_runs()
    return [r for r in runs if any(fnmatch.fnmatch(r.name, p) for p in pattern)] if pattern else runs


def _load_timings() -> Dict[str, dict]:
    try:
        with open(TIMINGS) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def run(pattern: Sequence[str]) -> int:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    for r in select(pattern):
        status = r.status()
        if status == "finished":
            continue
        print(f"[study] {r.name} ({status})", flush=True)
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
        code = subprocess.call(r.command(resume=status == "resume"), cwd=REPO, env=env)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        timings = _load_timings()
        entry = timings.setdefault(r.name, {"wall_s": 0.0, "cpu_s": 0.0, "attempts": 0})
        entry["wall_s"] += time.time() - start
        entry["cpu_s"] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        entry["attempts"] += 1
        os.makedirs(OUTPUT, exist_ok=True)
        with open(TIMINGS, "w") as f:
            json.dump(timings, f, indent=1, sort_keys=True)
        if code:
            print(f"[study] {r.name} exited {code}", flush=True)
            return code
    return 0


def _record(r: Run, timing: dict) -> dict:
    res = r.results()
    history = res.get("history", [])
    last = history[-1] if history else {}
    diag = {k[5:]: v for k, v in last.items() if k.startswith("diag_")}
    per_epoch = {k: [h.get(k) for h in history] for k in ("test_acc", "train_loss_kd_logit", "diag_logit_kl_student",
                                                          "diag_logit_kl_raw", "diag_logit_kl_denoised",
                                                          "diag_gamma_logit_mean", "diag_gamma_logit_std",
                                                          "diag_diff_logit_t0_250", "diag_diff_feat_t0_250")
                 if any(k in h for h in history)}
    return {"command": shlex.join(r.command()[1:]), "finished": bool(res.get("finished")),
            "best_acc": res.get("best_acc"), "last_acc": res.get("last_acc"), "epochs": res.get("epoch"),
            "extra_parameters": res.get("extra_parameters"), "wall_s": timing.get("wall_s"),
            "cpu_s": timing.get("cpu_s"), "last_epoch_diagnostics": diag, "per_epoch": per_epoch}


def summary(out: str) -> int:
    timings = _load_timings()
    records = {r.name: _record(r, timings.get(r.name, {})) for r in all_runs() if r.results()}
    with open(out, "w") as f:
        json.dump({"python": "python", "env": "OMP_NUM_THREADS=1 PYTHONPATH=.", "runs": records}, f, indent=1)
    print(f"{len(records)} runs -> {out}")
    return 0


def main(argv: Sequence[str]) -> int:
    if not argv or argv[0] not in ("list", "run", "summary"):
        print(__doc__)
        return 2
    if argv[0] == "list":
        for r in select(argv[1:]):
            print(f"{r.status():9s} {r.name}")
        return 0
    if argv[0] == "run":
        return run(argv[1:])
    return summary(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
