"""The distiller base class: mdistiller's API (``forward_train``/``forward_test``, learnable and extra
parameters) plus the few hooks the single trainer uses."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..dataset.registry import dataset_info


def probe_input_size(cfg) -> Tuple[int, int]:
    """(H, W) of the images of ``cfg.DATASET.TYPE``, as its dataset registered it: the size of the dummy
    image with which methods read their models' feature shapes at build time."""

    return tuple(dataset_info(cfg.DATASET.TYPE).input_size)


@torch.no_grad()
def probe_features(model: nn.Module, input_size: Sequence[int]) -> Tuple[torch.Tensor, Dict]:
    """``(logits, feats)`` of ``model`` for one zero image of ``input_size`` (H, W) in eval mode, without a
    graph: how methods read channel counts and spatial sizes at construction (as mdistiller's
    ``get_feat_shapes``). The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        ref = next(model.parameters())
        x = torch.zeros(1, 3, int(input_size[0]), int(input_size[1]), device=ref.device, dtype=ref.dtype)
        return model(x)
    finally:
        model.train(was_training)


#: train batch layouts: their item names, in order
BATCH_LAYOUTS: Dict[str, Tuple[str, ...]] = {
    "default": ("image", "target", "index"),
    "crd": ("image", "target", "index", "contrastive_index"),
}


class Distiller(nn.Module):
    """A student, an optional frozen teacher and the method's own training-time modules.

    Training: ``distiller(image=..., target=..., epoch=..., **extra)`` returns ``(student_logits, losses)``
    where ``losses`` is a dict of scalar tensors whose sum is the loss to minimise.
    Evaluation (``.eval()``): ``distiller(image=...)`` returns the student's logits.
    Every parameter that is not the teacher's is learnable; what is neither student nor teacher is
    counted by ``get_extra_parameters()`` and is never part of a student checkpoint.
    """

    registry_name: str = ""
    #: the train batch a method receives, named in ``BATCH_LAYOUTS``; a method whose batches carry more
    #: than the dataset's ``(image, target, index)`` also overrides ``wrap_train_set``
    train_batch_layout: str = "default"
    #: whether the method needs a teacher network (NONE does not)
    needs_teacher: bool = True

    def __init__(self, student: nn.Module, teacher: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            for p in teacher.parameters():
                p.requires_grad_(False)
            teacher.eval()

    @classmethod
    def build(cls, student: nn.Module, teacher: Optional[nn.Module], cfg, num_data: int) -> "Distiller":
        """Construct from config. Methods that need the train-set size (CRD) override this."""
        return cls(student, teacher, cfg)

    def train(self, mode: bool = True) -> "Distiller":
        """Switch the student and the method's modules; the teacher always stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def get_learnable_parameters(self) -> List[nn.Parameter]:
        """Student parameters plus every parameter of the method's own modules (never the teacher's)."""
        teacher_ids = {id(p) for p in self.teacher.parameters()} if self.teacher is not None else set()
        return [p for p in self.parameters() if id(p) not in teacher_ids]

    def get_extra_parameters(self) -> int:
        """Number of parameters the method adds on top of the student (training time only)."""
        student_ids = {id(p) for p in self.student.parameters()}
        return sum(p.numel() for p in self.get_learnable_parameters() if id(p) not in student_ids)

    @classmethod
    def wrap_train_set(cls, splits, cfg):
        """The train set this method trains on, given the dataset's ``DatasetSplits``; None (the default)
        means the dataset's own. CRD adds each sample's contrastive indices here."""
        return None

    @classmethod
    def train_batch_fields(cls) -> Tuple[str, ...]:
        """Names of the items of a train batch, in order (the keyword arguments of ``forward_train``)."""
        return BATCH_LAYOUTS[cls.train_batch_layout]

    def teacher_forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, Dict]:
        """The teacher's ``(logits, feats)`` without building a graph."""
        if self.teacher is None:
            raise RuntimeError(f"{type(self).__name__} needs a teacher (DISTILLER.TEACHER)")
        with torch.no_grad():
            return self.teacher(image)

    def forward_train(self, image: torch.Tensor, target: torch.Tensor, **kwargs):
        raise NotImplementedError

    def forward_test(self, image: torch.Tensor) -> torch.Tensor:
        return self.student(image)[0]

    def forward(self, **kwargs):
        if self.training:
            return self.forward_train(**kwargs)
        return self.forward_test(kwargs["image"])
