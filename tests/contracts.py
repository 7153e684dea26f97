"""The registry contracts every method and dataset must meet, as check functions: ``test_contracts.py``
runs them over everything registered, ``e2e/test_plugin.py`` over a plugin's registrations.

Every registered method and every registered dataset is held to the documented interfaces, so a new one
is tested without touching the tests.

Methods (``distiller_dict``): built on a tiny pair of the CIFAR zoo; a method that cannot serve it must say
so with a ``ConfigError`` and is then built on the first pair of ``tests.helpers.CIFAR_PAIRS`` it
serves (with that pair's config file ``configs/cifar100/<method>/<pair>.yaml`` when there is one). Batches
come from the method's own ``wrap_train_set`` and ``train_batch_fields``, as the trainer makes them.

Datasets (``DATASETS``): built from tiny data in their real on-disk format (``TINY_DATA_WRITERS``), or
from nothing when they need no files; a dataset that reads files but has no writer here fails, asking
for one.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, default_collate

from mdistiller_ddkd.dataset import DATASETS, CropFlip, DatasetSplits, get_dataset
from mdistiller_ddkd.dataset.common import WithIndex
from mdistiller_ddkd.dataset.registry import build_splits
from mdistiller_ddkd.distillers import distiller_dict
from mdistiller_ddkd.engine.cfg import load_config
from mdistiller_ddkd.errors import ConfigError
from mdistiller_ddkd.models import MODEL_ZOOS, get_model
from tests.helpers import CIFAR_PAIRS, REPO_ROOT

#: the pair every method is tried on first: small, and unequal in channels (256 vs 64) like real pairs
TINY_PAIR = ("resnet8x4", "resnet8")
NUM_CLASSES = 100
BATCH = 4
NUM_TRAIN = 8  #: size of the in-memory train set the contract batches come from (num_data)



# ----------------------------------------------------------------------------------------- methods
class _TinyImages(Dataset):
    """``(image, target)`` pairs of random 32x32 images, one class per sample."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, 32, 32, generator=g)
        self.targets = [i % NUM_CLASSES for i in range(n)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.images[i], self.targets[i]


def _splits() -> DatasetSplits:
    base = _TinyImages(NUM_TRAIN)
    return DatasetSplits(train=WithIndex(base), test=base, num_classes=NUM_CLASSES, train_targets=list(base.targets))


def _method_config(method: str, pair_name: str, teacher: str, student: str):
    """The pair's config file for ``method`` when the repository has one, else the defaults."""
    path = os.path.join(REPO_ROOT, "configs", "cifar100", method.lower(), f"{pair_name}.yaml")
    opts = ["DISTILLER.TYPE", method, "DISTILLER.TEACHER", teacher, "DISTILLER.STUDENT", student]
    return load_config(path if os.path.isfile(path) else None, opts)


def _candidate_pairs() -> List[Tuple[str, str, str]]:
    return [("tiny", *TINY_PAIR)] + [(name, t, s) for name, (t, s) in CIFAR_PAIRS.items()]


_served_pair: Dict[Tuple[str, Tuple], Tuple[str, str, str]] = {}


def try_build(method: str, pair: Tuple[str, str, str]):
    """``(distiller, student, teacher, cfg, student state-dict keys before the build)``, fresh, on ``pair``
    (name, teacher, student); or, when the method refuses the pair, its ``ConfigError`` message."""
    cls = distiller_dict[method]
    pair_name, t_name, s_name = pair
    cfg = _method_config(method, pair_name, t_name, s_name)
    torch.manual_seed(0)
    student = get_model(s_name, "cifar100", NUM_CLASSES)
    teacher = get_model(t_name, "cifar100", NUM_CLASSES) if cls.needs_teacher else None
    student_keys = list(student.state_dict())
    try:
        distiller = cls.build(student, teacher, cfg, NUM_TRAIN)
    except ConfigError as err:  # the documented way to refuse a pair
        message = str(err.args[0] if err.args else err)
        assert len(message) >= 15, f"{method} refuses {t_name} -> {s_name} without saying why: {message!r}"
        return message
    return distiller, student, teacher, cfg, student_keys


def _build(method: str, pairs=None):
    """``try_build`` on the first of ``pairs`` (default: the tiny pair, then ``CIFAR_PAIRS``) the method
    serves."""
    candidates = tuple(pairs or _candidate_pairs())
    key = (method, candidates)
    refusals = []
    for pair in ([_served_pair[key]] if key in _served_pair else candidates):
        built = try_build(method, pair)
        if isinstance(built, str):
            refusals.append(f"{pair[1]} -> {pair[2]}: {built}")
            continue
        _served_pair[key] = pair
        return built
    pytest.fail(f"{method} serves none of the pairs tried:\n" + "\n".join(refusals))


def _train_kwargs(distiller, cfg) -> Dict:
    """A train batch in the method's layout, made as the data pipeline makes it, plus ``epoch``."""
    cls = type(distiller)
    splits = _splits()
    train_set = cls.wrap_train_set(splits, cfg) or splits.train
    items = [train_set[i] for i in (0, 3, 5, 6)[:BATCH]]
    fields = cls.train_batch_fields()
    assert all(len(item) == len(fields) for item in items), (
        f"{cls.__name__}: train items have {len(items[0])} entries, its train_batch_fields() names {fields}")
    assert fields[:3] == ("image", "target", "index")
    kwargs = dict(zip(fields, default_collate(items)))
    kwargs["epoch"] = int(cfg.SOLVER.EPOCHS)  # the last epoch: every warm-up is over
    return kwargs


def _params(module) -> Dict[int, torch.nn.Parameter]:
    return {id(p): p for p in module.parameters()} if module is not None else {}


def check_method_trains_one_step_within_the_contract(method, pairs=None):
    distiller, student, teacher, cfg, student_keys = _build(method, pairs)
    assert distiller.registry_name == method and distiller.student is student
    distiller.train()
    assert student.training and (teacher is None or not teacher.training)

    kwargs = _train_kwargs(distiller, cfg)
    for p in distiller.parameters():
        p.grad = None
    logits, losses = distiller(**kwargs)
    assert list(student.state_dict()) == student_keys, f"{method} changed the student's state-dict keys"
    assert isinstance(losses, dict) and losses, f"{method} returned no losses"
    for name, value in losses.items():
        assert isinstance(name, str) and name.startswith("loss_"), f"{method}: loss name {name!r}"
        assert torch.is_tensor(value) and value.dim() == 0 and value.is_floating_point(), f"{method}: {name}"
        assert math.isfinite(float(value.detach())), f"{method}: {name} = {float(value.detach())}"
    total = sum(losses.values())
    assert total.requires_grad
    total.backward()
    with torch.no_grad():
        assert torch.allclose(logits, student(kwargs["image"])[0], atol=1e-5), \
            f"{method}: forward_train must return the student's own logits"

    student_params, teacher_params = _params(student), _params(teacher)
    assert all(p.grad is None and not p.requires_grad for p in teacher_params.values()), f"{method}: teacher got grads"
    missing = [n for n, p in student.named_parameters() if p.grad is None]
    assert not missing, f"{method}: student parameters without a gradient: {missing[:5]}"
    assert any(float(p.grad.abs().sum()) > 0 for p in student_params.values())
    own = [(n, p) for n, p in distiller.named_parameters()
           if id(p) not in student_params and id(p) not in teacher_params]
    no_grad = [n for n, p in own if p.grad is None]
    assert not no_grad, f"{method}: parameters of its own modules without a gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for p in distiller.parameters() if p.grad is not None)
    learnable = {id(p) for p in distiller.get_learnable_parameters()}
    assert learnable == set(_params(distiller)) - set(teacher_params)


def check_method_evaluates_as_the_student_alone(method, pairs=None):
    distiller, student, _, cfg, _ = _build(method, pairs)
    distiller.train()
    distiller(**_train_kwargs(distiller, cfg))  # one training forward first: buffers may change
    distiller.eval()
    assert not student.training
    image = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = distiller(image=image)
        assert torch.equal(out, student(image)[0]), f"{method}: eval output is not student(image)[0]"
    assert out.shape == (3, NUM_CLASSES)


def check_method_counts_exactly_its_own_parameters(method, pairs=None):
    distiller, student, teacher, _, _ = _build(method, pairs)
    everything = _params(distiller)
    assert set(_params(student)) <= set(everything)
    own = set(everything) - set(_params(student)) - set(_params(teacher))
    expected = sum(everything[i].numel() for i in own)
    assert distiller.get_extra_parameters() == expected, (
        f"{method}: get_extra_parameters() = {distiller.get_extra_parameters()}, its own modules hold {expected}")
    if not distiller.needs_teacher:
        assert distiller.get_extra_parameters() == 0 and teacher is None


# ---------------------------------------------------------------------------------------- datasets
def _write_cifar100(root: str) -> List[str]:
    from mdistiller_ddkd.dataset.cifar_format import write_cifar100_folder

    write_cifar100_folder(root, n_train=8, n_test=4, num_classes=100, seed=0)
    return ["DATASET.CHECK_INTEGRITY", "False"]


def _write_image_folder(root: str) -> List[str]:
    """``root/{train,val}/<class>/*.JPEG``: two classes, two images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(2):
            folder = os.path.join(root, split, f"n0{c}")
            os.makedirs(folder)
            for i in range(2):
                pixels = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(os.path.join(folder, f"{i}.JPEG"))
    return []


def _write_tiny_imagenet(root: str) -> List[str]:
    """The download's layout: ``train/<wnid>/images/``, ``val/images/`` + ``val_annotations.txt``."""
    from mdistiller_ddkd.dataset.tiny_imagenet import write_tiny_imagenet_folder

    write_tiny_imagenet_folder(root, num_classes=2, train_per_class=2, val_per_class=1, annotated_val=True)
    return []


def _write_fashion_mnist(root: str) -> List[str]:
    """The original idx files, gzip-compressed: ten classes, one image each per split."""
    from mdistiller_ddkd.dataset.fashion_mnist import write_fashion_mnist_folder

    write_fashion_mnist_folder(root, train_per_class=1, test_per_class=1)
    return []


#: dataset name -> writer(root) of a few samples in its real on-disk format, returning extra config pairs;
#: a dataset that reads no files needs no entry
TINY_DATA_WRITERS: Dict[str, Callable[[str], List[str]]] = {
    "cifar100": _write_cifar100,
    "fashion_mnist": _write_fashion_mnist,
    "imagenet": _write_image_folder,
    "tiny_imagenet": _write_tiny_imagenet,
    # needs no files (generated in memory); the entry only makes it small
    "synthetic": lambda root: ["DATASET.SYNTHETIC.TRAIN_PER_CLASS", "4", "DATASET.SYNTHETIC.TEST_PER_CLASS", "2"],
}


def _dataset_config(name: str, root: str, *opts: str):
    model = sorted(MODEL_ZOOS[DATASETS[name].model_zoo])[0]  # any model of its zoo makes the config valid
    return load_config(None, ["DATASET.TYPE", name, "DATASET.ROOT", root, "DATASET.DOWNLOAD", "False",
                              "DISTILLER.TEACHER", model, "DISTILLER.STUDENT", model,
                              "DATASET.NUM_WORKERS", "0", "SOLVER.BATCH_SIZE", "2", "DATASET.TEST.BATCH_SIZE", "2",
                              "SOLVER.DEVICE", "cpu", *opts])


def _tiny_dataset_config(name: str, tmp_path):
    """The config of ``name`` on tiny data: written by its writer, or none at all when it needs no files."""
    root = str(tmp_path / "data")
    os.makedirs(root)
    if name in TINY_DATA_WRITERS:
        return _dataset_config(name, root, *TINY_DATA_WRITERS[name](root))
    cfg = _dataset_config(name, root)
    try:
        build_splits(cfg)
    except OSError as err:  # FileNotFoundError and kin: it reads files from DATASET.ROOT
        pytest.fail(f"DATASET.TYPE {name!r} reads files ({type(err).__name__}: {str(err).splitlines()[0][:160]}) but "
                    f"tests/test_contracts.py has no tiny-data writer for it: add one to TINY_DATA_WRITERS that "
                    f"writes a few samples in its real on-disk format")
    return cfg


def _check_image(image, size, what):
    assert torch.is_tensor(image) and image.dtype == torch.float32, what
    assert tuple(image.shape[-3:]) == (3, *size), f"{what}: {tuple(image.shape)}, registered input size {size}"


def check_dataset_items_have_the_documented_layout(name, tmp_path):
    info = DATASETS[name]
    assert info.model_zoo in MODEL_ZOOS, f"{name}: unknown model zoo {info.model_zoo!r}"
    cfg = _tiny_dataset_config(name, tmp_path)
    if info.config is not None:
        assert set(cfg.DATASET[info.config_key]) == set(info.config), f"DATASET.{info.config_key} missing"
    splits = build_splits(cfg)
    assert isinstance(splits.augment, CropFlip) and splits.num_classes >= 2
    assert len(splits.train_targets) == len(splits.train) > 0 and len(splits.test) > 0
    for i in (0, len(splits.train) - 1):
        item = splits.train[i]
        assert len(item) == 3, f"{name}: train items are (image, target, index), got {len(item)} entries"
        image, target, index = item
        _check_image(image, info.input_size, f"{name} train[{i}]")
        assert index == i and int(target) == int(splits.train_targets[i]) and 0 <= int(target) < splits.num_classes
    item = splits.test[0]
    assert len(item) == 2, f"{name}: test items are (image, target), got {len(item)} entries"
    _check_image(item[0], info.input_size, f"{name} test[0]")
    assert 0 <= int(item[1]) < splits.num_classes


def check_dataset_loaders_batch_in_the_documented_layout(name, tmp_path):
    info = DATASETS[name]
    cfg = _tiny_dataset_config(name, tmp_path)
    train_loader, val_loader, num_data, num_classes = get_dataset(cfg)
    batch = next(iter(train_loader))
    assert len(batch) == 3, f"{name}: train batches are (image, target, index), got {len(batch)} entries"
    image, target, index = batch
    _check_image(image, info.input_size, f"{name} train batch")
    assert image.shape[0] == target.shape[0] == index.shape[0] == 2 and int(index.max()) < num_data
    image, target = next(iter(val_loader))
    _check_image(image, info.input_size, f"{name} test batch")
    assert int(target.max()) < num_classes
    splits = build_splits(cfg)
    if splits.train_uint8 is None:
        return
    assert splits.mean_std is not None, f"{name}: train_uint8 needs mean_std for DATASET.GPU_AUGMENT"
    assert tuple(splits.train_uint8.shape) == (len(splits.train), *info.input_size, 3)
    assert splits.train_uint8.dtype == torch.uint8
    cfg.defrost()
    cfg.DATASET.GPU_AUGMENT = True
    image, target, index = next(iter(get_dataset(cfg, device=torch.device("cpu"))[0]))
    _check_image(image, info.input_size, f"{name} GPU_AUGMENT batch")
    assert torch.equal(target, torch.as_tensor(splits.train_targets)[index])
