"""Offline study: can DDKD's logit noise network learn the teacher's logits, and in which space?

Trains the logit branch's noise network (``NoiseNet1x1``) alone with eq. 5 on a frozen teacher's logits of the
training images (train augmentation), with the optimiser of a run (SGD 0.05, momentum 0.9, weight decay 5e-4,
batch 64), and measures the diffusion loss per timestep quarter on the test images' logits — next to the loss
of the best *linear* denoiser given the targets' mean and covariance (``linear_baseline``): what a network
achieves that knows only the targets' first two moments. Spaces: the raw logits (the paper), the logits over
their RMS (unit scale), per-sample z-scores (logit standardisation, Sun et al. 2024); each with the time-embedding
table initialised N(0, 1) (PyTorch's default, as DiffKD) and at zero (``DDKD.TIME_EMBEDDING_INIT zero``).

    python docs/results/ddkd_variants/offline_logit_denoiser.py \
        --teacher output/study/teachers/demo_teacher_r20/student_best \
        --out docs/results/ddkd_variants/offline_logit_denoiser.json DATASET.TYPE synthetic
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from mdistiller_ddkd.dataset import get_dataset
from mdistiller_ddkd.diffusion.branch import DiffusionBranch
from mdistiller_ddkd.diffusion.variants import Variants, build_branch
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.models import cifar_model_dict


def zscore(x: torch.Tensor) -> torch.Tensor:
    """Per-sample standardisation over the classes (Sun et al.: unbiased std, + 1e-7)."""
    return (x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-7)


def linear_baseline(train: torch.Tensor, test: torch.Tensor, alphas_cumprod: torch.Tensor, lo: int, hi: int,
                    draws: int = 4) -> float:
    """E||ε - ε̂||²/D of the best linear predictor ε̂ = s·(a²Σ + s²I)⁻¹(y - aμ), t ~ U{lo..hi-1}, on ``test``."""
    mu, cov = train.mean(0), torch.cov(train.T)
    d, total, gen = train.shape[1], 0.0, torch.Generator().manual_seed(0)
    for _ in range(draws):
        t = torch.randint(lo, hi, (test.shape[0],), generator=gen)
        a, s = alphas_cumprod[t].sqrt()[:, None], (1 - alphas_cumprod[t]).sqrt()[:, None]
        eps = torch.randn(test.shape, generator=gen, dtype=torch.float64)
        y = a * test + s * eps
        pred = torch.stack([s[i] * torch.linalg.solve(a[i] ** 2 * cov + s[i] ** 2 * torch.eye(d), y[i] - a[i] * mu)
                            for i in range(test.shape[0])])
        total += float(((pred - eps) ** 2).mean())
    return total / draws


@torch.no_grad()
def teacher_logits(teacher, loader, passes: int) -> torch.Tensor:
    out = []
    for _ in range(passes):
        for batch in loader:
            out.append(teacher(batch[0])[0].double())
    return torch.cat(out)


def train_noise_net(targets: torch.Tensor, steps: int, seed: int, time_init: str) -> DiffusionBranch:
    torch.manual_seed(seed)
    branch = build_branch(targets.shape[1], targets.shape[1], "1x1", Variants(zero_time_embedding=time_init == "zero"))
    opt = torch.optim.SGD(branch.noise_net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for step in range(steps):
        idx = torch.randint(0, targets.shape[0], (64,))
        loss = branch.diffusion_loss(targets[idx].float()[:, :, None, None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return branch


@torch.no_grad()
def bucket_losses(branch: DiffusionBranch, test: torch.Tensor, draws: int = 4):
    out, gen = {}, torch.Generator().manual_seed(1)
    for lo in range(0, 1000, 250):
        vals = []
        for _ in range(draws):
            t = torch.randint(lo, lo + 250, (test.shape[0],), generator=gen)
            noise = torch.randn((test.shape[0], test.shape[1], 1, 1), generator=gen)
            vals.append(float(branch.diffusion_loss(test.float()[:, :, None, None], t, noise)))
        out[f"t{lo}_{lo + 250}"] = sum(vals) / len(vals)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--steps", default="320,3000")
    parser.add_argument("--out", required=True)
    parser.add_argument("opts", nargs="*")
    args = parser.parse_args()
    cfg = load_config(None, ["DISTILLER.TEACHER", args.model, "DISTILLER.STUDENT", "resnet8",
                             "DATASET.NUM_WORKERS", "0", "SOLVER.DEVICE", "cpu", *args.opts])
    train_loader, test_loader, _, num_classes = get_dataset(cfg)
    teacher = cifar_model_dict[args.model][0](num_classes=num_classes)
    teacher.load_state_dict(torch.load(args.teacher, map_location="cpu", weights_only=True)["model"])
    teacher.eval()
    start = time.time()
    train_l, test_l = teacher_logits(teacher, train_loader, args.passes), teacher_logits(teacher, test_loader, 1)
    rms = float(train_l.pow(2).mean().sqrt())
    report = {"teacher_logits": {"train": int(train_l.shape[0]), "test": int(test_l.shape[0]),
                                 "mean_norm": float(test_l.norm(dim=1).mean()), "rms": rms}, "spaces": {}}
    spaces = {"raw": (train_l, test_l), "unit_rms": (train_l / rms, test_l / rms),
              "zscore": (zscore(train_l), zscore(test_l))}
    ac = DiffusionBranch(num_classes, num_classes, "1x1").schedule.alphas_cumprod.double()
    for name, (tr, te) in spaces.items():
        entry = {"linear_baseline": {f"t{lo}_{lo + 250}": linear_baseline(tr, te, ac, lo, lo + 250)
                                     for lo in range(0, 1000, 250)}}
        for time_init in ("normal", "zero"):
            for steps in [int(s) for s in args.steps.split(",")]:
                branch = train_noise_net(tr, steps, 0, time_init)
                branch.train()  # BatchNorm with batch statistics, as in training
                entry[f"noise_net_time_{time_init}_{steps}_steps"] = bucket_losses(branch, te)
        report["spaces"][name] = entry
        print(name, json.dumps(entry))
    report["seconds"] = time.time() - start
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
