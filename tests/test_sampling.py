"""Per-sample randomness and data order as functions of (seed, epoch, index) (``dataset/sampling.py``):
the same batches with and without workers, after a restart and from mid-epoch; sharding as
``DistributedSampler``; on-device augmentation and CRD's negatives follow the same rule."""

from __future__ import annotations

import pytest
import torch

from mdistiller_ddkd.cli.train import main as train_main
from mdistiller_ddkd.engine.cfg import load_config
from tests.helpers import call_cli, tiny_run_overrides


def cli(capsys, *args, main=train_main):
    return call_cli(capsys, main, *args)


class _RandomItems(torch.utils.data.Dataset):
    """Each item draws from torch, python and numpy's global RNGs (as a transform may)."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        import random

        import numpy as np

        return torch.tensor([float(i), float(torch.rand(())), random.random(), float(np.random.rand())])


def test_a_sample_depends_on_seed_epoch_and_index_only_and_leaves_the_global_rngs_alone():
    import random

    import numpy as np

    from mdistiller_ddkd.dataset.sampling import SampleKey, SeededSamples

    data = SeededSamples(_RandomItems(), seed=7)
    first = [data[SampleKey(2, i)] for i in range(12)]
    torch.manual_seed(123), random.seed(4), np.random.seed(5)  # whatever state the caller's RNGs are in
    again = [data[SampleKey(2, i)] for i in reversed(range(12))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(data[SampleKey(3, 0)], first[0]) and not torch.equal(first[1][1:], first[2][1:])
    assert not torch.equal(SeededSamples(_RandomItems(), seed=8)[SampleKey(2, 0)], first[0])
    torch.manual_seed(123), random.seed(4), np.random.seed(5)
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    data[SampleKey(1, 1)]
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert (np.random.get_state()[1] == states[2]).all()


def _epoch_batches(loader, epoch, step=0):
    from mdistiller_ddkd.dataset import set_train_position

    set_train_position(loader, epoch, step)
    return [(image.clone(), index.clone()) for image, _, index in loader]


def test_batches_are_the_same_with_persistent_workers_after_a_restart_and_from_mid_epoch():
    from mdistiller_ddkd.dataset import get_dataset

    def loader(workers):
        cfg = load_config(None, tiny_run_overrides("unused", **{"DATASET.NUM_WORKERS": str(workers),
                                                       "DATASET.SYNTHETIC.TRAIN_PER_CLASS": "3"}))
        return get_dataset(cfg)[0]

    plain, workers, restarted = loader(0), loader(2), loader(2)
    reference = [_epoch_batches(plain, e) for e in (1, 2)]
    assert len(reference[0]) == 4 and not torch.equal(reference[0][0][1], reference[1][0][1])
    for ours in ([_epoch_batches(workers, e) for e in (1, 2)], [[], _epoch_batches(restarted, 2)]):
        for epoch_ref, epoch_ours in zip(reference, ours):
            if epoch_ours:
                assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(epoch_ref, epoch_ours))
    tail = _epoch_batches(plain, 2, step=2)
    assert len(tail) == 2 and all(torch.equal(a[0], b[0]) for a, b in zip(reference[1][2:], tail))


@pytest.mark.parametrize("length,world", [(10, 3), (12, 4), (7, 2)])
def test_epoch_sampler_shards_as_distributed_sampler(length, world):
    """Against torch's DistributedSampler (no shuffle) applied to the epoch's permutation: the same padding
    (the permutation's head repeated) and the same every-world-th interleave."""
    from torch.utils.data.distributed import DistributedSampler

    from mdistiller_ddkd.dataset.sampling import EpochSampler, epoch_order

    perm = epoch_order(length, seed=3, epoch=5).tolist()
    for rank in range(world):
        sampler = EpochSampler(length, seed=3, rank=rank, world_size=world)
        sampler.set_epoch(5)
        expected = [perm[i] for i in DistributedSampler(range(length), world, rank, shuffle=False)]
        assert [key.index for key in sampler] == expected and len(sampler) == len(expected)
        sampler.set_epoch(5, start=2)
        assert [key.index for key in sampler] == expected[2:] and len(sampler) == len(expected) - 2


def test_device_augment_resumes_mid_epoch_with_the_same_batches():
    from mdistiller_ddkd.dataset.common import CIFAR100_MEAN, CIFAR100_STD
    from mdistiller_ddkd.dataset.device_augment import DeviceAugmentLoader

    images = torch.randint(0, 256, (21, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    make = lambda: DeviceAugmentLoader(images, [0] * 21, 4, CIFAR100_MEAN, CIFAR100_STD, torch.device("cpu"),  # noqa: E731
                                       seed=2, rank=1, world_size=2)
    full = _epoch_batches(make(), 3)
    tail = _epoch_batches(make(), 3, step=1)
    assert len(full) == 3 and len(tail) == 2
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(full[1:], tail))


def test_crd_negatives_follow_the_sample_seed():
    from mdistiller_ddkd.dataset.common import WithIndex
    from mdistiller_ddkd.dataset.crd import ContrastiveDataset
    from mdistiller_ddkd.dataset.sampling import SampleKey, SeededSamples

    base = WithIndex(torch.utils.data.TensorDataset(torch.zeros(30, 1), torch.arange(30) % 3))
    data = SeededSamples(ContrastiveDataset(base, [i % 3 for i in range(30)], 3, 5, "exact"), seed=1)
    first = data[SampleKey(4, 7)][3]
    torch.manual_seed(99)
    assert torch.equal(data[SampleKey(4, 7)][3], first) and not torch.equal(data[SampleKey(5, 7)][3], first)
