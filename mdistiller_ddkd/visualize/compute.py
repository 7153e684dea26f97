"""The numbers behind the figures: mdistiller's class-correlation matrices of logits and their difference,
and the t-SNE embedding of pooled features (scikit-learn)."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import torch


def class_mean_logits(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The K×K matrix whose row c is the mean logit vector over the images of class c (float64; a class
    without images is a row of NaN)."""
    logits, labels = logits.double(), labels.long()
    sums = torch.zeros(num_classes, logits.shape[1], dtype=torch.float64).index_add_(0, labels, logits)
    counts = torch.bincount(labels, minlength=num_classes).double().unsqueeze(1)
    return sums / counts


def correlation_difference(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """|S − T| with the diagonal set to 0 (mdistiller's figure of the DKD paper)."""
    diff = (student - teacher).abs()
    diff.fill_diagonal_(0.0)
    return diff


def off_diagonal_stats(diff: torch.Tensor) -> Tuple[float, float]:
    """``(mean, max)`` of the off-diagonal entries of a square matrix (rows of absent classes ignored)."""
    mask = ~torch.eye(diff.shape[0], dtype=torch.bool)
    values = diff[mask]
    values = values[torch.isfinite(values)]
    return float(values.mean()), float(values.max())


def subsample(count: int, max_samples: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``min(count, max_samples)`` of ``count`` items, drawn without replacement from ``seed``."""
    if count <= max_samples:
        return torch.arange(count)
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:max_samples].sort().values


def tsne_embedding(features: torch.Tensor, seed: int) -> np.ndarray:
    """scikit-learn's t-SNE of ``features`` (N×D) to N×2 (PCA initialisation, perplexity 30 or what N allows)."""
    from sklearn.manifold import TSNE

    n = features.shape[0]
    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(features.double().numpy())
