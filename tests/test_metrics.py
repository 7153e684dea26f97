"""Evaluation as mdistiller computes it (``engine/metrics.py``): top-1 / top-5 accuracy and the loss are
per-batch values averaged with the batch sizes as weights (mdistiller's ``accuracy`` + ``AverageMeter``),
which equals counting over the whole set — checked with uneven batches against that formula in NumPy."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mdistiller_ddkd.engine.distributed import Runtime
from mdistiller_ddkd.engine.evaluation import EpochSums, evaluate, topk_correct


class _Logits(nn.Module):
    """A distiller in eval mode: ``model(image=...)`` returns logits."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, image):
        return image.flatten(1) @ self.weight


def mdistiller_validate(batches, weight):
    """mdistiller's validate(): per batch ``correct[:k].sum() * 100 / batch`` and the mean cross-entropy,
    averaged over batches weighted by their sizes."""
    sums = {"top1": 0.0, "top5": 0.0, "loss": 0.0}
    count = 0
    for image, target in batches:
        logits = image.reshape(len(image), -1).astype(np.float64) @ weight
        order = np.argsort(-logits, axis=1, kind="stable")
        n = len(target)
        for k, key in ((1, "top1"), (5, "top5")):
            sums[key] += (order[:, :k] == target[:, None]).any(axis=1).sum() * 100.0 / n * n
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        sums["loss"] += -log_probs[np.arange(n), target].mean() * n
        count += n
    return {k: v / count for k, v in sums.items()}


def test_evaluate_equals_mdistillers_weighted_batch_average_with_uneven_batches():
    gen = torch.Generator().manual_seed(0)
    images, targets = torch.randn(23, 3, 2, 2, generator=gen), torch.randint(0, 10, (23,), generator=gen)
    weight = torch.randn(12, 10, generator=gen)
    loader = DataLoader(TensorDataset(images, targets), batch_size=5)  # 5, 5, 5, 5, 3
    ours = evaluate(_Logits(weight.clone()), loader, torch.device("cpu"))
    theirs = mdistiller_validate([(x.numpy(), y.numpy()) for x, y in loader], weight.double().numpy())
    assert abs(ours["test_acc"] - theirs["top1"]) < 1e-9 and abs(ours["test_acc_top5"] - theirs["top5"]) < 1e-9
    assert abs(ours["test_loss"] - theirs["loss"]) < 1e-5


def test_topk_counts_hits_and_handles_fewer_classes_than_k():
    logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    target = torch.tensor([1, 2, 0])
    top1, top5 = topk_correct(logits, target, (1, 5))
    assert (int(top1), int(top5)) == (1, 3)  # three classes: top-5 is every class


def test_epoch_sums_weight_each_batch_by_its_size():
    sums = EpochSums.zeros(torch.device("cpu"))
    for loss, logits, target in ((2.0, torch.eye(4), torch.arange(4)), (4.0, torch.eye(2), torch.tensor([1, 1]))):
        sums.add(torch.tensor(loss), logits, target, {"loss_ce": torch.tensor(loss)})
    record = sums.record(0.1, Runtime(device=torch.device("cpu")))
    assert record["train_loss"] == (2.0 * 4 + 4.0 * 2) / 6 and record["train_loss_ce"] == record["train_loss"]
    assert record["train_acc"] == 100.0 * 5 / 6 and record["lr"] == 0.1
    restored = EpochSums.from_state(sums.state(), torch.device("cpu"))
    assert restored.record(0.1, Runtime(device=torch.device("cpu"))) == record
