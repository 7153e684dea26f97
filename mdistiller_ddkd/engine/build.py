"""Build student, teacher and distiller from a config (model lookup, teacher checkpoint resolution)."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

from torch import nn

from ..distillers import Distiller, get_distiller_class
from ..download import DownloadError, TeacherArchiveError, ensure_cifar_teachers
from ..errors import ConfigError, MissingInputError
from ..models import get_model, is_timm_name, model_zoo, zoo_for
from ..models.timm_pretrained import pretrained_classes
from .checkpoint import load_model_weights


def model_kwargs(cfg, role: str) -> Dict[str, Any]:
    """``get_model``'s extra arguments for the ``role`` ("TEACHER" | "STUDENT") model: timm's constructor
    arguments (``DISTILLER.TIMM.<ROLE>_KWARGS``); a zoo model takes none."""
    return dict(cfg.DISTILLER.TIMM[f"{role}_KWARGS"])


def build_student(cfg, num_classes: int) -> nn.Module:
    """The student, from timm's pretrained weights when ``DISTILLER.TIMM.STUDENT_PRETRAINED`` (off by default)."""
    pretrained = bool(cfg.DISTILLER.TIMM.STUDENT_PRETRAINED)
    if pretrained and not is_timm_name(cfg.DISTILLER.STUDENT):
        raise ConfigError(f"DISTILLER.TIMM.STUDENT_PRETRAINED applies to timm/ students, not {cfg.DISTILLER.STUDENT}")
    extra = {"download": bool(cfg.DATASET.DOWNLOAD)} if pretrained else {}
    return get_model(cfg.DISTILLER.STUDENT, cfg.DATASET.TYPE, num_classes, pretrained, **model_kwargs(cfg, "STUDENT"),
                     **extra)


def teacher_checkpoint_path(cfg) -> Optional[str]:
    """``DISTILLER.TEACHER_CKPT`` or, when empty, the zoo's released checkpoint for the teacher (mdistiller's
    path, relative to the working directory); None when there is none (ImageNet: torchvision's weights)."""
    if cfg.DISTILLER.TEACHER_CKPT:
        return cfg.DISTILLER.TEACHER_CKPT
    entry = model_zoo(zoo_for(cfg.DATASET.TYPE)).get(cfg.DISTILLER.TEACHER, None)  # timm/ names have none
    return entry[1] if entry is not None else None


def _missing_teacher_message(cfg, path: str) -> str:
    return (
        f"teacher checkpoint for {cfg.DISTILLER.TEACHER} not found: {os.path.abspath(path)}.\n"
        f"Get mdistiller's CIFAR-100 teachers with `python tools/download_teachers.py` (unpacks "
        f"cifar_teachers.tar into ./download_ckpts/), run from the folder that holds download_ckpts/, or "
        f"point DISTILLER.TEACHER_CKPT at a checkpoint ({{'model': state_dict}}, e.g. a student_best of your own "
        f"run of method NONE)."
    )


def build_teacher(cfg, num_classes: int, allow_download: bool = True) -> nn.Module:
    """The teacher with its trained weights; missing or mismatched checkpoints stop with a clear message."""
    dataset_type = cfg.DATASET.TYPE
    path = teacher_checkpoint_path(cfg)
    if is_timm_name(cfg.DISTILLER.TEACHER):
        return build_timm_teacher(cfg, num_classes, path, allow_download and cfg.DATASET.DOWNLOAD)
    if path is None:
        try:  # a zoo with downloadable weights (ImageNet: torchvision's)
            return get_model(cfg.DISTILLER.TEACHER, dataset_type, num_classes, pretrained=True)
        except ConfigError:  # the zoo has no downloadable weights for it
            raise MissingInputError(
                f"no teacher checkpoint for {cfg.DISTILLER.TEACHER}: none is released for it; "
                f"set DISTILLER.TEACHER_CKPT to a checkpoint of your own"
            ) from None
    teacher = get_model(cfg.DISTILLER.TEACHER, dataset_type, num_classes)
    if not os.path.isfile(path) and not cfg.DISTILLER.TEACHER_CKPT and allow_download and cfg.DATASET.DOWNLOAD:
        _try_download_teachers(path)
    if not os.path.isfile(path):
        raise MissingInputError(_missing_teacher_message(cfg, path))
    load_model_weights(teacher, path, what=f"teacher ({cfg.DISTILLER.TEACHER})")
    return teacher


def build_timm_teacher(cfg, num_classes: int, path: Optional[str], download: bool) -> nn.Module:
    """A ``timm/`` teacher: weights from ``path`` (timm's layout, ``.safetensors``/``.pth``/``.pt``, or our
    ``{'model': ...}``), else timm's pretrained tag, which must classify the dataset's classes."""
    name, kwargs = cfg.DISTILLER.TEACHER, model_kwargs(cfg, "TEACHER")
    if path is not None:
        if not os.path.isfile(path):
            raise MissingInputError(f"teacher checkpoint for {name} not found: {os.path.abspath(path)} "
                                    f"(DISTILLER.TEACHER_CKPT)")
        teacher = get_model(name, cfg.DATASET.TYPE, num_classes, **kwargs)
        load_model_weights(teacher, path, what=f"teacher ({name})")
        return teacher
    classes = pretrained_classes(name)
    if classes is not None and classes != num_classes:
        raise MissingInputError(
            f"the pretrained weights of {name} classify {classes} classes, {cfg.DATASET.TYPE} has {num_classes}: "
            f"a teacher needs a classifier for them; set DISTILLER.TEACHER_CKPT to a fine-tuned checkpoint (e.g. "
            f"student_best of a NONE run with DISTILLER.TIMM.STUDENT_PRETRAINED True)")
    return get_model(name, cfg.DATASET.TYPE, num_classes, pretrained=True, download=download, **kwargs)


def _try_download_teachers(path: str) -> None:
    """Fetch mdistiller's teacher archive when the default path is missing; failures fall through to the
    missing-checkpoint message."""
    marker = os.sep + "cifar_teachers" + os.sep
    normalized = os.path.normpath(path)
    if marker not in normalized:
        return
    dest_root = normalized.split(marker)[0] or "."
    try:
        ensure_cifar_teachers(dest_root)
    except (DownloadError, TeacherArchiveError) as err:  # offline, unreachable, corrupt: then the missing file
        print(f"[mdistiller_ddkd] automatic teacher download failed: {err}")


def build_distiller(cfg, num_data: int, num_classes: int) -> Tuple[Distiller, nn.Module]:
    """The distiller for ``DISTILLER.TYPE`` (and the student it trains)."""
    cls = get_distiller_class(cfg.DISTILLER.TYPE)
    student = build_student(cfg, num_classes)
    teacher = build_teacher(cfg, num_classes) if cls.needs_teacher else None
    return cls.build(student, teacher, cfg, num_data), student
