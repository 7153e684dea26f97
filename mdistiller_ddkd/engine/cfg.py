"""The yacs configuration: mdistiller's nodes, keys and defaults, plus the keys this package adds.

Each method declares its own node beside its code (``register_distiller(NAME, config=node)``), and so does
each dataset (``register_dataset(name, config=node)`` -> ``DATASET.<NAME>``); ``build_default_config``
gathers them at call time, so methods and datasets registered by plugins are part of every config. Config
files and command-line pairs may only override existing keys: an unknown key is an error, as in mdistiller.
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, Optional, Sequence

import torch
import yaml
from yacs.config import CfgNode as CN

from .. import dataset as _datasets  # registers every dataset and its config node
from .. import distillers as _distillers  # registers every method and its config node
from ..configs_path import packaged_config
from ..errors import ConfigError, MissingInputError, UnknownNameError
from ..models import check_model_name
from ..registry import Registry
from .distributed import DEVICE_CHOICES
from .update import UPDATE_RULES

#: ``SOLVER.AMP`` -> the autocast dtype (None: full precision; fp16 also needs a gradient scaler)
AMP_CHOICES: Dict[str, Optional[torch.dtype]] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}

def _experiment_and_data(cfg: CN) -> None:
    cfg.EXPERIMENT = CN()
    cfg.EXPERIMENT.PROJECT = "distill"
    cfg.EXPERIMENT.NAME = ""
    cfg.EXPERIMENT.TAG = "default"
    # added: seed of python/numpy/torch RNGs (each DDP rank offsets it by its rank)
    cfg.EXPERIMENT.SEED = 0

    cfg.DATASET = CN()
    cfg.DATASET.TYPE = "cifar100"  # any registered dataset: cifar100 | imagenet | synthetic | ...
    cfg.DATASET.NUM_WORKERS = 2
    cfg.DATASET.TEST = CN()
    cfg.DATASET.TEST.BATCH_SIZE = 64
    # added: folder holding cifar-100-python/ (CIFAR-100) or train/ and val/ (ImageNet)
    cfg.DATASET.ROOT = "./data"
    # added: download CIFAR-100 when it is missing
    cfg.DATASET.DOWNLOAD = True
    # added: verify the official md5 sums of the CIFAR-100 files (turn off for re-encoded copies)
    cfg.DATASET.CHECK_INTEGRITY = True
    # added: keep the CIFAR train set on the device and augment there (crop+flip), no DataLoader workers
    cfg.DATASET.GPU_AUGMENT = False


def _distiller_and_solver(cfg: CN) -> None:
    cfg.DISTILLER = CN()
    cfg.DISTILLER.TYPE = "NONE"
    cfg.DISTILLER.TEACHER = "ResNet50"
    cfg.DISTILLER.STUDENT = "resnet32"
    # added: teacher checkpoint; empty = download_ckpts/cifar_teachers/<teacher>_vanilla/ckpt_epoch_240.pth
    # relative to the working directory (ImageNet: torchvision's pretrained weights)
    cfg.DISTILLER.TEACHER_CKPT = ""
    # added: timm/<name> teachers and students (docs/usage.md "timm models"): timm.create_model arguments
    # (config files only: lower-case keys, e.g. drop_path_rate: 0.1) and pretrained weights for the student
    cfg.DISTILLER.TIMM = CN()
    cfg.DISTILLER.TIMM.TEACHER_KWARGS = CN(new_allowed=True)
    cfg.DISTILLER.TIMM.STUDENT_KWARGS = CN(new_allowed=True)
    cfg.DISTILLER.TIMM.STUDENT_PRETRAINED = False

    cfg.SOLVER = CN()
    cfg.SOLVER.TRAINER = "base"
    cfg.SOLVER.BATCH_SIZE = 64
    cfg.SOLVER.EPOCHS = 240
    cfg.SOLVER.LR = 0.05
    cfg.SOLVER.LR_DECAY_STAGES = [150, 180, 210]
    cfg.SOLVER.LR_DECAY_RATE = 0.1
    cfg.SOLVER.WEIGHT_DECAY = 0.0001
    cfg.SOLVER.MOMENTUM = 0.9
    cfg.SOLVER.TYPE = "SGD"
    cfg.SOLVER.DOT = CN()
    cfg.SOLVER.DOT.DELTA = 0.075
    # added: auto | cpu | cuda
    cfg.SOLVER.DEVICE = "auto"
    # added: off | bf16 | fp16 (fp16 uses a gradient scaler)
    cfg.SOLVER.AMP = "off"
    # added: channels-last memory layout for models and images
    cfg.SOLVER.CHANNELS_LAST = False
    # added: torch.compile the distiller
    cfg.SOLVER.COMPILE = False
    # added: SyncBatchNorm for the student under DistributedDataParallel
    cfg.SOLVER.SYNC_BN = False
    # added: clip the total gradient norm of each step to this value (0: off; a remedy, docs/diagnostics.md)
    cfg.SOLVER.GRAD_CLIP = 0.0
    # added: deterministic arithmetic (cuDNN, torch's algorithms, cuBLAS's workspace; engine/determinism.py)
    cfg.SOLVER.DETERMINISTIC = False


def _log(cfg: CN) -> None:
    cfg.LOG = CN()
    cfg.LOG.TENSORBOARD_FREQ = 500
    cfg.LOG.SAVE_CHECKPOINT_FREQ = 40
    cfg.LOG.PREFIX = "./output"
    cfg.LOG.WANDB = False
    # added: W&B group of the run (suites set it to their name); empty: no group
    cfg.LOG.WANDB_GROUP = ""
    # added: gap metrics (DDKD/DIFFKD) and per-term gradient norms on a fixed probe batch (docs/diagnostics.md)
    cfg.LOG.DIAGNOSTICS = False
    cfg.LOG.DIAGNOSTICS_FREQ = 100  # every N training steps (TensorBoard), 0: only at each epoch's end
    cfg.LOG.DIAGNOSTICS_BATCH = 64  # probe batch size (fixed training images)


def _base_config() -> CN:
    """mdistiller's EXPERIMENT, DATASET, DISTILLER, SOLVER and LOG nodes, with the keys added here."""
    cfg = CN()
    for add_nodes in (_experiment_and_data, _distiller_and_solver, _log):
        add_nodes(cfg)
    return cfg


#: mdistiller keys this package accepts (so upstream files merge) but does not read: the methods' probe
#: images take the dataset's registered input size instead
_UNREAD_INPUT_SIZE_KEYS = (("FITNET", "INPUT_SIZE"), ("VID", "INPUT_SIZE"))
_UPSTREAM_INPUT_SIZE = [32, 32]


def _unread_compat_keys(cfg: CN) -> None:
    for node, key in _UNREAD_INPUT_SIZE_KEYS:
        cfg[node][key] = list(_UPSTREAM_INPUT_SIZE)


def _check_unread_compat_keys(cfg: CN) -> None:
    expected = list(_datasets.dataset_info(cfg.DATASET.TYPE).input_size)
    for node, key in _UNREAD_INPUT_SIZE_KEYS:
        value = list(cfg[node][key])
        if value not in (_UPSTREAM_INPUT_SIZE, expected):
            raise ConfigError(f"{node}.{key} = {value} is not read here: feature shapes are probed at the input size "
                             f"DATASET.TYPE {cfg.DATASET.TYPE} registers ({expected}); remove the key")


def build_default_config() -> CN:
    """A fresh default config: the base nodes, every registered method's node and every registered
    dataset's node (``DATASET.<NAME>``)."""
    cfg = _base_config()
    _add_nodes(cfg, "config node", sorted(_distillers.config_nodes.items()))
    _add_nodes(cfg.DATASET, "config node (DATASET.<NAME>)",
               [(info.config_key, info.config) for info in _datasets.DATASETS.values() if info.config is not None])
    _unread_compat_keys(cfg)
    return cfg


def _add_nodes(cfg: CN, kind: str, nodes: Sequence) -> None:
    """Add ``(key, node)`` copies to ``cfg``; a key it already holds is refused (the registry's duplicate check)."""
    keys: Registry = Registry(kind)
    for key, value in [*cfg.items(), *nodes]:
        keys.register(key, value)
    for key, node in nodes:
        cfg[key] = node.clone()


def resolve_config_path(path: str) -> str:
    """A config file: the path itself when it exists, else the same relative path among the configs
    shipped with the package (so ``configs/cifar100/ddkd/vgg13_mv2.yaml`` works from any folder)."""
    if os.path.isfile(path):
        return path
    found = packaged_config(path)
    if found is None:
        raise MissingInputError(
            f"config file {path!r} not found (neither relative to {os.getcwd()} nor among the packaged "
            f"configs; list them with `python tools/train.py --list-configs`)"
        )
    return found


def read_config_file(path: str) -> dict:
    """The mapping a YAML config file holds; malformed YAML, another top-level type or an unreadable
    file raise ``ConfigError`` naming the file (and the line)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem} — fix the file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read config file {path}: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds a YAML {type(data).__name__}, not a mapping of config nodes "
                          f"(e.g. 'SOLVER:' with 'EPOCHS: 240' indented below it) — fix the file")
    return data


def load_config(cfg_file: Optional[str] = None, opts: Sequence[str] = (), base: Optional[CN] = None) -> CN:
    """Defaults, then the file, then ``KEY VALUE`` pairs from the command line (in that order); frozen.

    Unknown keys are an error (yacs); the message names the key and what to do.
    """
    cfg = (base or build_default_config()).clone()
    if opts and len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs, got {list(opts)}")
    data = read_config_file(resolve_config_path(cfg_file)) if cfg_file else None
    where = f"config {cfg_file}" if data is not None else "overrides"
    try:
        if data is not None:
            cfg.merge_from_other_cfg(CN(data))
            where = "overrides"
        if opts:
            cfg.merge_from_list(list(opts))
    except (KeyError, AssertionError) as err:  # yacs: KeyError from files, AssertionError from lists
        raise UnknownNameError(
            f"{err.args[0] if err.args else err} — check the spelling against the defaults in "
            f"mdistiller_ddkd/engine/cfg.py (or the method's or dataset's own file)"
        ) from None
    except ValueError as err:  # yacs: a value of another type than the default's ("Type mismatch ...")
        raise ConfigError(f"{where}: {err}") from None
    except TypeError as err:  # yacs, for keys that are not strings (e.g. a YAML key `1:`)
        raise ConfigError(f"{where}: {err} — config keys are upper-case names") from None
    validate_config(cfg)
    cfg.freeze()
    return cfg


def _choices():
    """(node, key) -> the valid values; registries supply the open-ended ones (and their message)."""

    return {
        ("SOLVER", "DEVICE"): DEVICE_CHOICES,
        ("SOLVER", "AMP"): tuple(AMP_CHOICES),
        ("SOLVER", "TYPE"): ("SGD",),
        ("SOLVER", "TRAINER"): UPDATE_RULES,
        ("DATASET", "TYPE"): _datasets.DATASETS,
        ("DISTILLER", "TYPE"): _distillers.distiller_dict,
    }


def validate_config(cfg: CN) -> None:
    """Reject values the code cannot act on, with the valid choices (taken from the registries, so what a
    plugin registers is valid too)."""
    for (node, key), choices in _choices().items():
        value = cfg[node][key]
        if isinstance(choices, Registry):
            choices.get(value)  # an unknown name raises the registry's message, listing the valid ones
        elif value not in choices:
            raise UnknownNameError(f"{node}.{key} = {value!r} is not one of {', '.join(map(str, choices))}")
    for key in ("STUDENT", "TEACHER"):
        check_model_name(cfg.DISTILLER[key], cfg.DATASET.TYPE)
    _check_unread_compat_keys(cfg)
    _check_values(cfg)
    _check_device_available(cfg)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _sorted_epochs(v) -> bool:
    return isinstance(v, (list, tuple)) and all(_is_int(x) and x >= 0 for x in v) and list(v) == sorted(v)


#: key -> (test, what it must be): the numbers the trainer divides by, counts with or schedules on
VALUE_RULES = {
    "SOLVER.EPOCHS": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "SOLVER.BATCH_SIZE": (lambda v: _is_int(v) and v >= 1, "a positive integer (the global batch)"),
    "DATASET.TEST.BATCH_SIZE": (lambda v: _is_int(v) and v >= 1, "a positive integer"),
    "DATASET.NUM_WORKERS": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "SOLVER.LR": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "SOLVER.LR_DECAY_RATE": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "SOLVER.LR_DECAY_STAGES": (_sorted_epochs, "a list of epochs in ascending order, e.g. [150, 180, 210]"),
    "SOLVER.WEIGHT_DECAY": (lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    "SOLVER.MOMENTUM": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "EXPERIMENT.SEED": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
    "LOG.SAVE_CHECKPOINT_FREQ": (lambda v: _is_int(v) and v >= 0, "a non-negative integer (0: no epoch_N copies)"),
    "LOG.TENSORBOARD_FREQ": (lambda v: _is_int(v) and v >= 0, "a non-negative integer"),
}


def _check_values(cfg: CN) -> None:
    for key, (test, what) in VALUE_RULES.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        if not test(node):
            raise ConfigError(f"{key} = {node!r} must be {what}")


def _check_device_available(cfg: CN) -> None:

    if cfg.SOLVER.DEVICE == "cuda" and not torch.cuda.is_available():
        raise ConfigError("SOLVER.DEVICE is 'cuda' but no CUDA device is available here; use SOLVER.DEVICE cpu "
                          "(or auto, which takes CUDA when there is one)")


def output_dir_name(cfg: CN) -> str:
    """``EXPERIMENT.NAME`` or, when empty, ``EXPERIMENT.TAG`` with commas made path-safe (as mdistiller)."""
    return cfg.EXPERIMENT.NAME or cfg.EXPERIMENT.TAG.replace(",", "_")


def iter_flat(cfg: CN, prefix: str = "") -> Iterable:
    """(``A.B.C``, value) for every leaf key."""
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, CN):
            yield from iter_flat(value, name + ".")
        else:
            yield name, value
