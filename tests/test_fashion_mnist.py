"""Fashion-MNIST: the idx reader against bytes built independently (struct), gzip and plain files, the
class-balanced nested subsets, the 28→32 zero padding into three channels, the normalisation and the
crop-and-flip augmentation, and one-line errors for a missing root or a malformed file. All on tiny idx
files written here, never on the real data."""

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from mdistiller_ddkd.dataset import DATASETS, CropFlip
from mdistiller_ddkd.dataset.fashion_mnist import (
    FILES,
    balanced_subset,
    parse_idx,
    read_split,
    to_rgb32,
    write_fashion_mnist_folder,
    write_idx,
)
from mdistiller_ddkd.dataset.registry import build_splits
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.errors import ConfigError, DataFileError, MissingInputError, UserError


def fm_cfg(root, *opts):
    return load_config(None, ["DATASET.TYPE", "fashion_mnist", "DATASET.ROOT", str(root), "DATASET.NUM_WORKERS", "0",
                              "DISTILLER.TEACHER", "resnet20", "DISTILLER.STUDENT", "resnet8", *opts])


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array, written out with struct (independent of the module's writer)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + bytes(array.astype(np.uint8).flatten().tolist())


@pytest.fixture(scope="module")
def fm_root(tmp_path_factory):
    return write_fashion_mnist_folder(str(tmp_path_factory.mktemp("fm")), train_per_class=5, test_per_class=3)


def test_registration():
    info = DATASETS["fashion_mnist"]
    assert info.model_zoo == "cifar" and info.input_size == (32, 32)
    assert dict(info.config) == {"TRAIN_PER_CLASS": 0, "TEST_PER_CLASS": 0, "SEED": 0}


def test_parse_idx_reads_struct_built_bytes():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(images)), images)
    labels = np.array([9, 0, 3], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(labels)), labels)
    # a non-uint8 type: big-endian int32 values
    data = struct.pack(">BBBB", 0, 0, 0x0C, 1) + struct.pack(">I", 2) + struct.pack(">ii", -7, 70000)
    np.testing.assert_array_equal(parse_idx(data), np.array([-7, 70000]))


@pytest.mark.parametrize("compress", [True, False])
def test_reads_gzip_and_plain_files(tmp_path, compress):
    write_fashion_mnist_folder(str(tmp_path), train_per_class=2, test_per_class=1, compress=compress)
    suffix = ".gz" if compress else ""
    with open(tmp_path / (FILES["train"][0] + suffix), "rb") as f:
        raw = f.read()
    raw = gzip.decompress(raw) if compress else raw
    images, labels = read_split(str(tmp_path), "train")
    assert images.shape == (20, 28, 28) and labels.dtype == np.int64
    np.testing.assert_array_equal(images, np.frombuffer(raw[16:], np.uint8).reshape(20, 28, 28))
    assert sorted(np.bincount(labels).tolist()) == [2] * 10


def test_subfolder_layout(tmp_path):
    os.makedirs(tmp_path / "fashion-mnist")
    write_fashion_mnist_folder(str(tmp_path / "fashion-mnist"), train_per_class=1, test_per_class=1)
    assert read_split(str(tmp_path), "test")[0].shape == (10, 28, 28)


def test_padding_three_channels():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (2, 28, 28), dtype=np.uint8)
    out = to_rgb32(images)
    assert out.shape == (2, 32, 32, 3) and out.dtype == np.uint8
    for c in range(3):
        np.testing.assert_array_equal(out[:, 2:30, 2:30, c], images)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (out[:, border] == 0).all()


def test_balanced_nested_subsets():
    labels = np.random.default_rng(3).permutation(np.repeat(np.arange(10), 7))
    small, large = balanced_subset(labels, 2, 5, "train"), balanced_subset(labels, 5, 5, "train")
    assert np.bincount(labels[small]).tolist() == [2] * 10 and np.bincount(labels[large]).tolist() == [5] * 10
    assert set(small) <= set(large)
    assert not np.array_equal(small, balanced_subset(labels, 2, 6, "train"))  # the seed picks the images
    np.testing.assert_array_equal(balanced_subset(labels, 0, 5, "train"), np.arange(70))
    with pytest.raises(ConfigError, match="TRAIN_PER_CLASS 8: class"):
        balanced_subset(labels, 8, 5, "train")


def test_splits_normalisation_and_augmentation(fm_root):
    splits = build_splits(fm_cfg(fm_root, "DATASET.FASHION_MNIST.TRAIN_PER_CLASS", "4",
                                 "DATASET.FASHION_MNIST.TEST_PER_CLASS", "3"))
    assert len(splits.train) == 40 and len(splits.test) == 30 and splits.num_classes == 10
    assert splits.augment == CropFlip(padding=4, fill=0, hflip=True)
    raw = splits.train_uint8.numpy()
    assert raw.shape == (40, 32, 32, 3)
    x = raw.astype(np.float64) / 255.0
    mean, std = splits.mean_std
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(0), atol=1e-4)
    np.testing.assert_allclose(std, x.reshape(-1, 3).std(0), atol=1e-4)
    test_images, test_labels = read_split(fm_root, "test")
    keep = balanced_subset(test_labels, 3, 0, "test")
    image, target = splits.test[0]
    expected = (to_rgb32(test_images[keep[:1]])[0].astype(np.float64) / 255.0 - np.array(mean)) / np.array(std)
    torch.testing.assert_close(image, torch.from_numpy(expected.transpose(2, 0, 1)).float(), rtol=0, atol=1e-5)
    assert target == int(test_labels[keep[0]])
    torch.manual_seed(0)
    augmented = torch.stack([splits.train[0][0] for _ in range(8)])
    assert augmented.shape == (8, 3, 32, 32) and augmented.std(0).max() > 0  # random crops and flips


def test_missing_root_is_a_user_error(tmp_path):
    with pytest.raises(MissingInputError, match="DATASET.ROOT .*apt-get install dataset-fashion-mnist"):
        build_splits(fm_cfg(tmp_path / "absent"))


@pytest.mark.parametrize("damage, needle", [
    (lambda b: b[:-5], "announces shape"),
    (lambda b: b"\x01" + b[1:], "not an idx file"),
    (lambda b: b[:2] + b"\x07" + b[3:], "unknown idx type"),
])
def test_malformed_files_are_data_file_errors(tmp_path, damage, needle):
    write_fashion_mnist_folder(str(tmp_path), train_per_class=1, test_per_class=1, compress=False)
    path = tmp_path / FILES["train"][0]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DataFileError, match=needle):
        read_split(str(tmp_path), "train")


def test_truncated_gzip_and_bad_labels(tmp_path):
    write_fashion_mnist_folder(str(tmp_path), train_per_class=1, test_per_class=1)
    path = tmp_path / (FILES["test"][0] + ".gz")
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError):
        read_split(str(tmp_path), "test")
    write_idx(str(tmp_path / (FILES["train"][1] + ".gz")), np.full(10, 12, np.uint8))
    with pytest.raises(DataFileError, match="labels outside"):
        read_split(str(tmp_path), "train")
