"""CRD: Tian et al., "Contrastive Representation Distillation" (ICLR 2020) — the NCE pieces as functions.

An anchor embedding ``v`` (one network) is scored against ``K + 1`` rows of the *other* network's memory
bank (row 0 the positive, then ``K`` negatives): ``h = exp(<v, m> / T) / Z`` where ``Z`` is the contrast
normalisation constant, estimated once from the first batch as ``mean(exp(<v, m> / T)) * N`` (N the number
of training samples), so that ``h`` approximates a probability over the data set. The NCE objective treats
the positive as drawn from the data distribution and the negatives from the uniform noise ``Pn = 1/N``
with ``K`` noise samples per positive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrast_scores(
    memory: torch.Tensor, contrast_index: torch.Tensor, anchor: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Unnormalised scores ``exp(<anchor_b, memory[contrast_index[b, k]]> / T)``, shape (B, K+1), float32.

    ``memory`` (N, D) holds unit rows (no gradient flows into it); ``anchor`` (B, D) is unit-normalised.
    Computed in float32 even under autocast (``exp(1/0.07)`` overflows float16).
    """
    weights = memory[contrast_index].detach().float()  # (B, K+1, D)
    logits = torch.bmm(weights, anchor.float().unsqueeze(2)).squeeze(2)
    return torch.exp(logits / temperature)


def estimate_normalisation(scores: torch.Tensor, num_data: int) -> torch.Tensor:
    """CRD's Monte-Carlo estimate of the partition function: ``Z = mean(scores) * N`` (a detached scalar)."""
    return scores.detach().mean() * num_data


def nce_loss(probs: torch.Tensor, num_data: int, eps: float = 1e-7) -> torch.Tensor:
    """NCE loss on normalised scores ``probs`` (B, K+1) whose column 0 is the positive.

    ``-mean_b [ log(h⁺ / (h⁺ + K/N)) + Σ_k log((K/N) / (h⁻_k + K/N)) ]``, with ``eps`` in the denominators.
    """
    k = probs.shape[1] - 1
    noise = k / float(num_data)
    p_pos = probs[:, 0]
    p_neg = probs[:, 1:]
    log_d1 = torch.log(p_pos / (p_pos + noise + eps))
    log_d0 = torch.log(noise / (p_neg + noise + eps))
    return -(log_d1 + log_d0.sum(dim=1)).mean()


@torch.no_grad()
def momentum_update_(memory: torch.Tensor, index: torch.Tensor, embedding: torch.Tensor, momentum: float) -> None:
    """In place: ``memory[i] <- normalise(momentum * memory[i] + (1 - momentum) * embedding)`` for the rows
    ``index`` (unique indices expected, as in a data-loader batch)."""
    rows = memory.index_select(0, index)
    rows = rows * momentum + embedding.detach().to(memory.dtype) * (1.0 - momentum)
    memory.index_copy_(0, index, F.normalize(rows, p=2, dim=1))
