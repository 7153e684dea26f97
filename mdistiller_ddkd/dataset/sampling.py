"""Train-set order and augmentation randomness as functions of (seed, epoch, position), so that a run
interrupted anywhere resumes to the same batches, whatever ``DATASET.NUM_WORKERS``.

* Order: ``epoch_order`` is a permutation seeded by (seed, epoch); under DDP it is padded by repeating its
  head to a multiple of the world size and rank r takes every world-size-th sample from r (the sharding of
  ``DistributedSampler``). ``EpochSampler`` yields this rank's share as ``SampleKey(epoch, index)`` and can
  start at any position (a mid-epoch resume skips the batches already trained on).
* Per-sample randomness: ``SeededSamples`` reads ``base[index]`` with the torch (CPU), python and numpy
  global RNGs seeded by (seed, epoch, index). DataLoader workers — persistent or not — keep no random
  stream of their own that a resume would have to restore, and a method's per-sample draws (CRD's
  negatives) follow the same rule. In the main process (``NUM_WORKERS 0``) the RNGs are restored
  afterwards, so data loading never perturbs the training RNG (diffusion noise, dropout).
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator, List, NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

_MASK64 = (1 << 64) - 1
#: stream tags: the seeds of different uses never coincide
ORDER_STREAM, SAMPLE_STREAM, BATCH_STREAM = 1, 2, 3


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every integer of ``parts`` (splitmix64 chained over them), so
    neighbouring (epoch, index) pairs get unrelated random streams."""
    h = 0
    for part in parts:
        h = _splitmix64(h ^ _splitmix64(int(part) & _MASK64))
    return h >> 1


def _seed_global_rngs(seed: int) -> None:
    torch.random.default_generator.manual_seed(seed)  # the CPU generator only: CUDA streams stay untouched
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)


@contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Run the block with the global torch (CPU), python and numpy RNGs seeded by ``seed``; outside a
    DataLoader worker their previous states come back afterwards."""
    if get_worker_info() is not None:  # a worker's RNGs serve nothing else: no need to restore them
        _seed_global_rngs(seed)
        yield
        return
    torch_state, python_state, numpy_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    try:
        _seed_global_rngs(seed)
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(python_state)
        np.random.set_state(numpy_state)


class SampleKey(NamedTuple):
    """What ``EpochSampler`` yields and ``SeededSamples`` reads: sample ``index`` as drawn in ``epoch``."""

    epoch: int
    index: int


class SeededSamples(Dataset):
    """``dataset[SampleKey(epoch, i)]`` is ``base[i]`` with its random transform (and any per-sample draw)
    seeded by (``seed``, epoch, i); a plain integer index reads ``base[i]`` with the caller's RNGs."""

    def __init__(self, base: Dataset, seed: int) -> None:
        self.base = base
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key):
        if not isinstance(key, tuple):
            return self.base[key]
        epoch, index = key
        with seeded_rngs(derive_seed(self.seed, SAMPLE_STREAM, epoch, index)):
            return self.base[index]


def epoch_order(length: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """This rank's sample indices of ``epoch``, in order (see the module docstring)."""
    order = torch.randperm(length, generator=torch.Generator().manual_seed(derive_seed(seed, ORDER_STREAM, epoch)))
    if world_size == 1:
        return order
    total = -(-length // world_size) * world_size
    if total > length:
        order = torch.cat([order] * (-(-total // length)))[:total]
    return order[rank:total:world_size]


def share_size(length: int, world_size: int) -> int:
    """Samples per rank and epoch (``ceil(length / world_size)``)."""
    return -(-length // world_size)


class EpochSampler(Sampler):
    """Yields ``SampleKey(epoch, index)`` for this rank's share of ``epoch_order``, from position ``start``.

    ``set_epoch(epoch, start)`` chooses the pass (start: samples to skip, a multiple of the batch size for a
    mid-epoch resume); the DataLoader batches the keys as usual, so the batches after a skip are exactly
    those of an uninterrupted epoch.
    """

    def __init__(self, length: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.length, self.seed, self.rank, self.world_size = length, int(seed), rank, world_size
        self.epoch, self.start = 1, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def indices(self) -> List[int]:
        return epoch_order(self.length, self.seed, self.epoch, self.rank, self.world_size)[self.start:].tolist()

    def __iter__(self) -> Iterator[SampleKey]:
        epoch = self.epoch
        return (SampleKey(epoch, i) for i in self.indices())

    def __len__(self) -> int:
        return max(0, share_size(self.length, self.world_size) - self.start)


def set_train_position(loader, epoch: int, step: int = 0) -> None:
    """Make the next pass over a train loader of ``get_dataset`` epoch ``epoch`` from batch ``step`` on."""
    target = loader if hasattr(loader, "set_epoch") else loader.sampler
    target.set_epoch(epoch, start=step * loader.batch_size)
