"""The built-in synthetic dataset: CIFAR-shaped, deterministic from its seed, fast, and learnable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mdistiller_ddkd.dataset import get_dataset
from mdistiller_ddkd.dataset.synthetic import generate_synthetic
from mdistiller_ddkd.engine.cfg import load_config


def _cfg(*opts):
    return load_config(None, ["DATASET.TYPE", "synthetic", "DATASET.NUM_WORKERS", "0", "SOLVER.DEVICE", "cpu",
                              *opts])


def test_generation_is_deterministic_shaped_and_balanced():
    a = generate_synthetic(10, 200, 50, seed=3)
    b = generate_synthetic(10, 200, 50, seed=3)
    c = generate_synthetic(10, 200, 50, seed=4)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    train_x, train_y, test_x, test_y = a
    assert train_x.shape == (2000, 32, 32, 3) and train_x.dtype == np.uint8
    assert test_x.shape == (500, 32, 32, 3)
    assert np.bincount(train_y).tolist() == [200] * 10 and np.bincount(test_y).tolist() == [50] * 10
    assert 20 < train_x.std() < 100  # real contrast, not a constant image


def test_cleaner_data_parameters_change_the_images_and_are_checked():
    from mdistiller_ddkd.dataset.synthetic import fewest_textures

    assert fewest_textures(10) == 4 and fewest_textures(12) == 4 and fewest_textures(13) == 5
    default = generate_synthetic(10, 20, 5, seed=1)
    same = generate_synthetic(10, 20, 5, seed=1, num_textures=fewest_textures(10))  # 0 means the fewest
    assert all(np.array_equal(x, y) for x, y in zip(default, same))
    quiet = generate_synthetic(10, 20, 5, seed=1, noise=0.0, distractor_gain=(0.0, 0.0))
    assert np.array_equal(quiet[1], default[1]) and not np.array_equal(quiet[0], default[0])
    # no noise and no distractor: pixels away from the two patches are all the (colour-cast) background
    assert np.abs(np.diff(quiet[0][:, :, :, 0].astype(int), axis=2)).mean() < np.abs(
        np.diff(default[0][:, :, :, 0].astype(int), axis=2)).mean() / 2
    more = generate_synthetic(10, 20, 5, seed=1, num_textures=8)
    assert not np.array_equal(more[0], default[0])
    for bad in ({"noise": -0.1}, {"distractor_gain": (0.5, 0.2)}, {"num_textures": 3}):
        with pytest.raises(ValueError, match="DATASET.SYNTHETIC"):
            generate_synthetic(10, 20, 5, seed=1, **bad)
    # the config keys reach the generator
    cfg = _cfg("DATASET.SYNTHETIC.TRAIN_PER_CLASS", "20", "DATASET.SYNTHETIC.TEST_PER_CLASS", "5",
               "DATASET.SYNTHETIC.SEED", "1", "DATASET.SYNTHETIC.NUM_TEXTURES", "8")
    from mdistiller_ddkd.dataset.registry import build_splits

    assert np.array_equal(build_splits(cfg).train_uint8.numpy(), more[0])


def test_builder_gives_cifar_layout_and_own_normalisation():
    cfg = _cfg("DATASET.SYNTHETIC.NUM_CLASSES", "6", "DATASET.SYNTHETIC.TRAIN_PER_CLASS", "10",
               "DATASET.SYNTHETIC.TEST_PER_CLASS", "4")
    train_loader, val_loader, num_data, num_classes = get_dataset(cfg)
    assert (num_data, num_classes) == (60, 6)
    image, target, index = next(iter(train_loader))
    assert image.shape[1:] == (3, 32, 32) and image.dtype == torch.float32
    assert index.max() < 60 and target.max() < 6
    test_image, test_target = next(iter(val_loader))
    # test images are normalised with the data's own mean/std: about zero mean and unit std
    all_test = torch.cat([x for x, _ in val_loader])
    assert abs(float(all_test.mean())) < 0.2 and 0.8 < float(all_test.std()) < 1.2
    from mdistiller_ddkd.dataset.registry import build_splits

    splits = build_splits(cfg)
    assert splits.train_uint8.shape == (60, 32, 32, 3) and splits.train_uint8.dtype == torch.uint8
    mean, std = splits.mean_std
    assert len(mean) == 3 and len(std) == 3


@pytest.mark.slow  # trains a network: ~60 s
def test_a_small_network_learns_it_well_above_chance():
    """resnet8, a few epochs through the real loaders: clearly better than the 10% of guessing."""
    from mdistiller_ddkd.models import cifar_model_dict

    torch.manual_seed(0)
    cfg = _cfg("DATASET.SYNTHETIC.TRAIN_PER_CLASS", "150", "SOLVER.BATCH_SIZE", "64")
    train_loader, val_loader, _, num_classes = get_dataset(cfg)
    model = cifar_model_dict["resnet8"][0](num_classes=num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for epoch in range(8):
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = 0.05 if epoch < 6 else 0.005
        for image, target, _ in train_loader:
            loss = F.cross_entropy(model(image)[0], target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for image, target in val_loader:
            correct += int((model(image)[0].argmax(1) == target).sum())
            total += len(target)
    accuracy = 100.0 * correct / total
    assert accuracy > 25.0, f"accuracy {accuracy:.1f}% after 8 epochs (chance: 10%)"
