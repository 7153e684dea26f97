"""Run diagnostics on a model without leaving a trace in training: RNG streams, BatchNorm statistics (and
every other buffer, e.g. CRD's memory banks), train/eval mode and ``.grad`` are as they were afterwards."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..rng import rng_state, set_rng_state

#: the probe's own seed: each probe draws the same noise, so successive probes are comparable
PROBE_SEED = 20240601


@contextmanager
def isolated(model: nn.Module, train: bool = True, seed: int = PROBE_SEED) -> Iterator[nn.Module]:
    """``model`` in train (or eval) mode with the RNGs seeded by ``seed``; on exit the python, numpy, torch
    and CUDA RNG states, all buffers and the mode are restored.

    In train mode BatchNorm normalises with the probe batch's own statistics (what the losses see during
    training) and updates its running statistics, which are put back here.
    """
    state = rng_state()
    buffers = [(buf, buf.detach().clone()) for buf in model.buffers()]
    was_training = model.training
    try:
        torch.manual_seed(seed)
        model.train(train)
        yield model
    finally:
        with torch.no_grad():
            for buf, saved in buffers:
                buf.copy_(saved)
        model.train(was_training)
        set_rng_state(state)
