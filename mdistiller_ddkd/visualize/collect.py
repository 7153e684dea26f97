"""What the figures are drawn from: for each run folder, the student's pooled features and logits and the
teacher's logits over the whole test split, with the labels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ..dataset.registry import build_splits
from ..engine.distributed import select_device
from ..engine.runs import load_student, load_teacher, open_run


@dataclass
class RunOutputs:
    """One run's outputs on the test split."""

    label: str
    method: str
    teacher: str
    student: str
    num_classes: int
    labels: torch.Tensor
    student_logits: torch.Tensor
    teacher_logits: torch.Tensor
    features: torch.Tensor

    @property
    def title(self) -> str:
        return f"{self.method} {self.teacher}→{self.student}\n{self.label}"


def _outputs(model: nn.Module, loader, device: torch.device, features: bool) -> Tuple[torch.Tensor, ...]:
    """``(logits, pooled features or None, labels)`` of ``model`` over ``loader``, on the CPU."""
    model = model.to(device).eval()
    logits, pooled, labels = [], [], []
    with torch.no_grad():
        for images, target in loader:
            out, feats = model(images.to(device))
            logits.append(out.float().cpu())
            if features:
                pooled.append(feats["pooled_feat"].float().cpu())
            labels.append(target.long())
    model.cpu()
    return torch.cat(logits), (torch.cat(pooled) if features else None), torch.cat(labels)


def collect_run(run_dir: str, label: str, which: str, teacher_ckpt: str, opts: Sequence[str]) -> RunOutputs:
    """The outputs of ``run_dir``'s ``student_<which>`` and of its teacher on the test split."""
    run = open_run(run_dir, opts, teacher_ckpt)
    cfg = run.cfg
    splits = build_splits(cfg)
    student, _ = load_student(run, which, splits.num_classes)
    teacher = load_teacher(run, splits.num_classes)
    device = select_device(cfg.SOLVER.DEVICE)
    loader = torch.utils.data.DataLoader(splits.test, batch_size=cfg.DATASET.TEST.BATCH_SIZE, shuffle=False,
                                         num_workers=cfg.DATASET.NUM_WORKERS)
    s_logits, features, labels = _outputs(student, loader, device, features=True)
    t_logits, _, _ = _outputs(teacher, loader, device, features=False)
    return RunOutputs(label, cfg.DISTILLER.TYPE, cfg.DISTILLER.TEACHER, cfg.DISTILLER.STUDENT, splits.num_classes,
                      labels, s_logits, t_logits, features)


def run_labels(run_dirs: Sequence[str]) -> List[str]:
    """A short, unique, file-name-safe label per run folder: its name (``-2``, ``-3`` ... on repeats)."""
    labels: List[str] = []
    for path in run_dirs:
        base = "".join(c if c.isalnum() or c in "-_.," else "_" for c in os.path.basename(os.path.normpath(path)))
        label, n = base or "run", 2
        while label in labels:
            label, n = f"{base}-{n}", n + 1
        labels.append(label)
    return labels
