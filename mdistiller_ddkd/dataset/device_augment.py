"""The fast CIFAR path (``DATASET.GPU_AUGMENT``): the whole train set as one uint8 tensor on the device,
random crop and horizontal flip done per batch on the device, as the dataset's ``CropFlip`` says (padding,
fill, whether to flip).

It draws from the same distribution as ``RandomCrop(size, padding, fill)`` + ``RandomHorizontalFlip()``:
crop offsets uniform on {0..2·padding}² of the padded image, flip with probability 1/2 (never when the
dataset's ``hflip`` is False). The order is the DataLoader path's (``sampling.epoch_order``: a fresh
permutation per epoch, DDP shards as ``DistributedSampler``), and each batch draws its crops and flips from
a generator seeded by (seed, epoch, rank, batch position), so ``set_epoch(epoch, start)`` can resume an
epoch in the middle with exactly the batches an uninterrupted pass would give.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from .registry import CropFlip
from .sampling import BATCH_STREAM, derive_seed, epoch_order, share_size


def random_crop_flip(
    images_nhwc: torch.Tensor, padding: int, generator: Optional[torch.Generator] = None, fill: int = 0,
    hflip: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop+flip a uint8 batch (B,H,W,C) padded with ``fill``; returns (cropped (B,H,W,C), offsets (B,2),
    flipped (B,) bool).

    Random numbers are drawn on the generator's device (CPU by default) and moved to the images' device.
    """
    b, h, w, _ = images_nhwc.shape
    device = images_nhwc.device
    padded = F.pad(images_nhwc, (0, 0, padding, padding, padding, padding), value=fill)
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator).to(device)
    flipped = (torch.rand(b, generator=generator) < 0.5).to(device) & hflip
    rows = offsets[:, 0:1] + torch.arange(h, device=device)
    steps = torch.arange(w, device=device)
    cols = offsets[:, 1:2] + torch.where(flipped[:, None], (w - 1) - steps, steps)
    batch_index = torch.arange(b, device=device)[:, None, None]
    cropped = padded[batch_index, rows[:, :, None], cols[:, None, :]]
    return cropped, offsets, flipped


class DeviceAugmentLoader:
    """An iterable of ``(image, target, index)`` batches built on ``device`` from a uint8 train set."""

    def __init__(
        self,
        images_nhwc: torch.Tensor,
        targets: Sequence[int],
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        augment: CropFlip = CropFlip(),
    ) -> None:
        self.images = images_nhwc.to(device)
        self.targets = torch.as_tensor(list(targets), dtype=torch.long, device=device)
        self.batch_size = batch_size
        self.device = device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1) * 255.0
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.augment = augment
        self.epoch, self.start = 0, 0
        self.dataset = self.images  # len(loader.dataset) as for a DataLoader
        self.channels_last = False

    @property
    def pad_fill(self) -> int:
        return self.augment.fill

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """The next pass is ``epoch`` from sample ``start`` of this rank's share (a multiple of the batch size)."""
        if start % self.batch_size:
            raise ValueError(f"start {start} is not a multiple of the batch size {self.batch_size}")
        self.epoch, self.start = epoch, start

    def _indices(self) -> torch.Tensor:
        indices = epoch_order(len(self.images), self.seed, self.epoch, self.rank, self.world_size)
        if len(indices) % self.batch_size == 1:  # a batch of one image breaks BatchNorm in training
            indices = indices[:-1]
        return indices

    def __len__(self) -> int:
        per_rank = share_size(len(self.images), self.world_size)
        full = per_rank // self.batch_size + (per_rank % self.batch_size > 1)
        return max(0, full - self.start // self.batch_size)

    def __iter__(self) -> Iterator:
        indices = self._indices()
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        for start in range(self.start, len(indices), self.batch_size):
            idx = indices[start:start + self.batch_size].to(self.device)
            g = torch.Generator().manual_seed(
                derive_seed(self.seed, BATCH_STREAM, self.epoch, self.rank, start // self.batch_size))
            cropped, _, _ = random_crop_flip(self.images[idx], self.augment.padding, generator=g,
                                            fill=self.augment.fill, hflip=self.augment.hflip)
            image = cropped.permute(0, 3, 1, 2).float().sub_(self.mean).div_(self.std)
            yield image.contiguous(memory_format=memory_format), self.targets[idx], idx
