"""The on-device CIFAR augmentation path (DATASET.GPU_AUGMENT), exercised on CPU."""

import itertools

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from mdistiller_ddkd.dataset.common import CIFAR100_MEAN, CIFAR100_STD, cifar_test_transform
from mdistiller_ddkd.dataset.device_augment import DeviceAugmentLoader, random_crop_flip


def test_crop_offsets_and_flips_have_the_torchvision_distribution():
    images = torch.zeros(20000, 2, 2, 1, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    _, offsets, flipped = random_crop_flip(images, padding=4, generator=g)
    for axis in (0, 1):
        counts = torch.bincount(offsets[:, axis], minlength=9).double()
        assert offsets[:, axis].min() == 0 and offsets[:, axis].max() == 8
        expected = len(images) / 9
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 26.1  # chi-square, 8 dof, p = 0.001
    assert abs(flipped.double().mean().item() - 0.5) < 0.02
    # offsets on the two axes are independent: all 81 combinations occur
    assert len({tuple(o) for o in offsets.tolist()}) == 81


@pytest.mark.parametrize("fill", [0, 128])
def test_crop_equals_torchvision_pad_crop_flip(fill):
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8))
    cropped, offsets, flipped = random_crop_flip(images, 4, torch.Generator().manual_seed(1), fill=fill)
    for i in range(len(images)):
        pil = Image.fromarray(images[i].numpy())
        ref = TF.crop(TF.pad(pil, 4, fill=fill), int(offsets[i, 0]), int(offsets[i, 1]), 32, 32)
        if flipped[i]:
            ref = TF.hflip(ref)
        assert np.array_equal(np.asarray(ref), cropped[i].numpy())


def test_loader_batches_match_the_torchvision_path_in_shape_dtype_and_values():
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8))
    targets = list(range(10))
    loader = DeviceAugmentLoader(images, targets, 4, CIFAR100_MEAN, CIFAR100_STD, torch.device("cpu"), seed=0)
    image, target, index = next(iter(loader))
    assert image.shape == (4, 3, 32, 32) and image.dtype == torch.float32
    assert target.dtype == torch.long and index.dtype == torch.long
    test_tf = cifar_test_transform()
    for b in range(4):
        pil = Image.fromarray(images[int(index[b])].numpy())
        candidates = []
        for oy, ox, flip in itertools.product(range(9), range(9), (False, True)):
            view = TF.crop(TF.pad(pil, 4), oy, ox, 32, 32)
            candidates.append(test_tf(TF.hflip(view) if flip else view))
        assert min(float((c - image[b]).abs().max()) for c in candidates) < 1e-5
        assert int(target[b]) == int(index[b])


@pytest.mark.parametrize("world_size", [1, 2])
def test_an_epoch_visits_every_sample_once(world_size):
    n = 24
    images = torch.zeros(n, 32, 32, 3, dtype=torch.uint8)
    seen = []
    for rank in range(world_size):
        loader = DeviceAugmentLoader(images, [0] * n, 5, CIFAR100_MEAN, CIFAR100_STD, torch.device("cpu"),
                                     seed=1, rank=rank, world_size=world_size)
        loader.set_epoch(3)
        batches = [idx for _, _, idx in loader]
        assert len(batches) == len(loader)
        seen.extend(torch.cat(batches).tolist())
    assert sorted(seen) == list(range(n))
    loader.set_epoch(4)
    other = torch.cat([idx for _, _, idx in loader]).tolist()
    assert other != seen[-len(other):]  # a fresh permutation per epoch


def test_a_trailing_batch_of_one_image_is_dropped():
    """BatchNorm cannot train on one image; the DataLoader path drops such a batch the same way."""
    loader = DeviceAugmentLoader(torch.zeros(11, 32, 32, 3, dtype=torch.uint8), [0] * 11, 5, CIFAR100_MEAN,
                                 CIFAR100_STD, torch.device("cpu"))
    sizes = [len(idx) for _, _, idx in loader]
    assert sizes == [5, 5] and len(loader) == 2


def test_training_with_gpu_augment_on_cpu(tiny_cifar_root, tmp_path):
    from mdistiller_ddkd.engine.cfg import load_config
    from mdistiller_ddkd.engine.trainer import Trainer

    cfg = load_config(None, [
        "DATASET.ROOT", tiny_cifar_root, "DATASET.CHECK_INTEGRITY", "False", "DATASET.DOWNLOAD", "False",
        "DATASET.GPU_AUGMENT", "True", "DATASET.NUM_WORKERS", "0", "SOLVER.EPOCHS", "1", "SOLVER.BATCH_SIZE", "32",
        "SOLVER.DEVICE", "cpu", "SOLVER.CHANNELS_LAST", "True", "DISTILLER.STUDENT", "resnet8",
        "LOG.PREFIX", str(tmp_path)])
    trainer = Trainer(cfg, show_progress=False)
    assert type(trainer.train_loader).__name__ == "DeviceAugmentLoader"
    results = trainer.fit()
    assert results["finished"] and np.isfinite(results["history"][0]["train_loss"])


def test_gpu_augment_pads_with_the_datasets_fill():
    """The synthetic data pads with its grey background in both paths (CIFAR: black in both)."""
    from mdistiller_ddkd.dataset import get_dataset
    from mdistiller_ddkd.engine.cfg import load_config

    cfg = load_config(None, ["DATASET.TYPE", "synthetic", "DATASET.GPU_AUGMENT", "True",
                             "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "4", "DATASET.SYNTHETIC.TEST_PER_CLASS", "2"])
    train_loader, _, _, _ = get_dataset(cfg)
    assert train_loader.pad_fill == 128


def test_gpu_augment_refuses_a_method_that_wraps_the_train_set_and_serves_one_that_does_not():
    from mdistiller_ddkd.dataset import get_dataset
    from mdistiller_ddkd.distillers import get_distiller_class
    from mdistiller_ddkd.engine.cfg import load_config

    common = ["DATASET.TYPE", "synthetic", "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "4",
              "DATASET.SYNTHETIC.TEST_PER_CLASS", "2", "DATASET.GPU_AUGMENT", "True",
              "DISTILLER.TEACHER", "resnet8x4", "DISTILLER.STUDENT", "resnet8"]
    crd = load_config(None, [*common, "DISTILLER.TYPE", "CRD", "CRD.NCE.K", "4"])
    with pytest.raises(ValueError, match="GPU_AUGMENT cannot serve CRD"):
        get_dataset(crd, wrap_train_set=get_distiller_class("CRD").wrap_train_set)
    kd = load_config(None, [*common, "DISTILLER.TYPE", "KD"])
    loader = get_dataset(kd, wrap_train_set=get_distiller_class("KD").wrap_train_set)[0]
    assert type(loader).__name__ == "DeviceAugmentLoader"
