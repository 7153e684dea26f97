"""Tiny-ImageNet: the folder layouts load with mdistiller's labels and normalisation, missing data is a
clear error, and the zoo's models have upstream's shapes and parameter counts at 64x64."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

from mdistiller_ddkd.dataset import DATASETS, get_dataset
from mdistiller_ddkd.dataset.registry import build_splits
from mdistiller_ddkd.dataset.tiny_imagenet import write_tiny_imagenet_folder
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.models import get_model, model_names

MEAN = np.array([0.4802, 0.4481, 0.3975])  # mdistiller's tiny_imagenet.py
STD = np.array([0.2302, 0.2265, 0.2262])


def tiny_cfg(root, *opts):
    return load_config(None, ["DATASET.TYPE", "tiny_imagenet", "DATASET.ROOT", str(root), "DATASET.NUM_WORKERS", "0",
                              "DISTILLER.TEACHER", "ResNet18", "DISTILLER.STUDENT", "MobileNetV2",
                              "SOLVER.BATCH_SIZE", "4", "DATASET.TEST.BATCH_SIZE", "3", "SOLVER.DEVICE", "cpu", *opts])


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_imagenet_folder(str(root), num_classes=3, train_per_class=4, val_per_class=2)
    return root


def normalised(path):
    """The expected test-time tensor of an image file: (pixels / 255 - mean) / std, channels first."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255.0
    return torch.from_numpy(((pixels - MEAN) / STD).transpose(2, 0, 1)).float()


def test_registration():
    info = DATASETS["tiny_imagenet"]
    assert info.model_zoo == "tiny_imagenet" and info.input_size == (64, 64)
    assert model_names("tiny_imagenet") == ["MobileNetV2", "ResNet18", "ShuffleV2"]


def test_folder_layout_loads_with_labels_and_normalisation(tiny_root):
    splits = build_splits(tiny_cfg(tiny_root))
    assert splits.num_classes == 3 and len(splits.train) == 12 and len(splits.test) == 6
    assert splits.train_uint8 is None  # rotation + flip is no pad-crop-flip: no on-device path
    base = os.path.join(str(tiny_root), "tiny-imagenet-200")
    wnids = sorted(os.listdir(os.path.join(base, "train")))
    for i in range(len(splits.train)):
        image, target, index = splits.train[i]
        assert index == i and image.shape == (3, 64, 64) and image.dtype == torch.float32
        assert target == splits.train_targets[i] == i // 4  # four images per class, classes in wnid order
    for i in range(len(splits.test)):
        image, target = splits.test[i]
        path = splits.test.samples[i][0]
        assert os.path.basename(os.path.dirname(path)) == wnids[target]
        torch.testing.assert_close(image, normalised(path), rtol=0, atol=1e-5)


def test_download_layout_with_val_annotations_gives_the_same_val_set(tiny_root, tmp_path):
    write_tiny_imagenet_folder(str(tmp_path), num_classes=3, train_per_class=4, val_per_class=2, annotated_val=True)
    annotated = build_splits(tiny_cfg(tmp_path)).test
    folders = build_splits(tiny_cfg(tiny_root)).test
    assert len(annotated) == len(folders) == 6
    for i in range(6):  # the same random pixels and labels, written in either layout
        (a, ta), (b, tb) = annotated[i], folders[i]
        assert ta == tb == i // 2
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loaders_batch_and_gpu_augment_is_refused(tiny_root):
    train_loader, val_loader, num_data, num_classes = get_dataset(tiny_cfg(tiny_root))
    image, target, index = next(iter(train_loader))
    assert image.shape == (4, 3, 64, 64) and num_data == 12 and num_classes == 3
    image, target = next(iter(val_loader))
    assert image.shape == (3, 3, 64, 64)
    with pytest.raises(ValueError, match="GPU_AUGMENT is not available for DATASET.TYPE tiny_imagenet"):
        get_dataset(tiny_cfg(tiny_root, "DATASET.GPU_AUGMENT", "True"), device=torch.device("cpu"))


def test_missing_or_empty_folder_is_a_clear_one_line_error(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        build_splits(tiny_cfg(tmp_path / "nowhere"))
    message = str(err.value)
    assert "\n" not in message and "tiny-imagenet-200/train" in message and "Expected layout" in message
    assert "tiny-imagenet-200.zip" in message and "DATASET.ROOT" in message
    os.makedirs(tmp_path / "empty" / "tiny-imagenet-200" / "train")
    os.makedirs(tmp_path / "empty" / "tiny-imagenet-200" / "val")
    with pytest.raises(FileNotFoundError, match="holds no images") as err:
        build_splits(tiny_cfg(tmp_path / "empty"))
    assert "\n" not in str(err.value)


def test_val_classes_must_match_train(tmp_path):
    base = write_tiny_imagenet_folder(str(tmp_path), num_classes=2, train_per_class=1, val_per_class=1)
    os.rename(os.path.join(base, "val", "n00000001"), os.path.join(base, "val", "n99999999"))
    with pytest.raises(ValueError, match="class folders differ"):
        build_splits(tiny_cfg(tmp_path))


# ------------------------------------------------------------------------------------------ models
def _mobilenetv2_tiny_layout(num_classes):
    """Upstream's mv2_tinyimagenet.py parameter count and ordered state-dict keys, from its architecture:
    stem 1x1 conv (bias) + BN; bottlenecks (in, out, t) = 1x1 conv + BN, 3x3 depthwise + BN, 1x1 conv + BN,
    every conv with bias; 1x1 conv 320 -> 1280 + BN; 1x1 conv classifier."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    conv = ["weight", "bias"]
    keys = [f"pre.0.{k}" for k in conv] + [f"pre.1.{k}" for k in bn]
    count = 3 * 32 + 32 + 2 * 32
    blocks = [("stage1", 32, 16, 1)]
    stages = [(2, 16, 24), (3, 24, 32), (4, 32, 64), (3, 64, 96), (3, 96, 160)]
    for s, (repeat, cin, cout) in enumerate(stages, start=2):
        blocks += [(f"stage{s}.{i}", cin if i == 0 else cout, cout, 6) for i in range(repeat)]
    blocks.append(("stage7", 160, 320, 6))
    for name, cin, cout, t in blocks:
        hidden = cin * t
        count += (cin * hidden + hidden) + 2 * hidden  # 1x1 expand + BN
        count += (9 * hidden + hidden) + 2 * hidden  # 3x3 depthwise + BN
        count += (hidden * cout + cout) + 2 * cout  # 1x1 projection + BN
        for index, kind in ((0, conv), (1, bn), (3, conv), (4, bn), (6, conv), (7, bn)):
            keys += [f"{name}.residual.{index}.{k}" for k in kind]
    keys += [f"conv1.0.{k}" for k in conv] + [f"conv1.1.{k}" for k in bn] + [f"conv2.{k}" for k in conv]
    count += 320 * 1280 + 1280 + 2 * 1280 + 1280 * num_classes + num_classes
    return keys, count


def test_mobilenetv2_has_upstreams_state_dict_and_parameter_count():
    model = get_model("MobileNetV2", "tiny_imagenet", 200)
    keys, count = _mobilenetv2_tiny_layout(200)
    assert list(model.state_dict()) == keys
    assert sum(p.numel() for p in model.parameters()) == count
    assert model.state_dict()["stage2.0.residual.3.weight"].shape == (96, 1, 3, 3)  # depthwise, 16 * 6 channels
    assert model.state_dict()["conv2.weight"].shape == (200, 1280, 1, 1)


EXPECTED_SHAPES = {  # batch 2 at 64x64, 200 classes
    "MobileNetV2": ([(32, 66, 66), (24, 33, 33), (32, 17, 17), (64, 9, 9), (1280, 9, 9)], 1280),
    "ResNet18": ([(64, 64, 64), (64, 64, 64), (128, 32, 32), (256, 16, 16), (512, 8, 8)], 512),
    "ShuffleV2": ([(24, 64, 64), (116, 32, 32), (232, 16, 16), (464, 8, 8)], 1024),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_SHAPES))
def test_models_forward_at_64x64(name):
    torch.manual_seed(0)
    model = get_model(name, "tiny_imagenet", 200).eval()
    with torch.no_grad():
        logits, feats = model(torch.randn(2, 3, 64, 64))
    stages, pooled = EXPECTED_SHAPES[name]
    assert logits.shape == (2, 200) and torch.isfinite(logits).all()
    assert [tuple(f.shape[1:]) for f in feats["feats"]] == stages
    assert feats["pooled_feat"].shape == (2, pooled)
    assert ("preact_feats" in feats) == (name != "MobileNetV2")
    if name != "ResNet18":  # mdistiller's CIFAR ResNet18 reports fixed [256, 512, 1024, 2048]
        assert model.get_stage_channels() == [c for c, _, _ in stages]


@pytest.mark.parametrize("name,feature_dim", [("ResNet18", 512), ("ShuffleV2", 1024)])
def test_cifar_based_models_match_upstream_with_a_200_class_head(name, feature_dim, models_reference):
    """mdistiller's CIFAR-100 keys, shapes and count, with 100 more classifier rows (``linear``)."""
    reference = models_reference["cifar100"][name]
    model = get_model(name, "tiny_imagenet", 200)
    assert sum(p.numel() for p in model.parameters()) == reference["num_params"] + 100 * (feature_dim + 1)
    expected = [(k, [200, *shape[1:]] if k.startswith("linear.") else shape) for k, shape in reference["state_dict"]]
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == expected


def test_shufflev2_global_pooling_equals_the_cifar_window_at_32x32():
    tiny = get_model("ShuffleV2", "tiny_imagenet", 200).eval()
    cifar = get_model("ShuffleV2", "cifar100", 200).eval()
    cifar.load_state_dict(tiny.state_dict())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(tiny(x)[0], cifar(x)[0], rtol=1e-5, atol=1e-6)
