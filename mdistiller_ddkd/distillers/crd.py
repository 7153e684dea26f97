"""CRD: Tian et al., "Contrastive Representation Distillation" (ICLR 2020).

Student and teacher pooled features are embedded (``Linear -> CRD.FEAT.DIM`` + L2 normalisation; both heads
are trained, the teacher network is not). Two memory banks of N × FEAT.DIM unit rows (N = train-set size)
hold the momentum-averaged student embeddings and teacher embeddings of every training image. For each
sample, the student embedding is contrasted against the teacher bank rows ``contrastive_index`` (its own
row = positive, then ``CRD.NCE.K`` negatives from other classes in "exact" mode, any other sample in
"relax" mode — drawn by :class:`mdistiller_ddkd.dataset.crd.ContrastiveDataset`), and symmetrically the
teacher embedding against the student bank, with NCE at temperature ``CRD.NCE.TEMPERATURE`` and the
normalisation constant Z estimated once per bank from the first batch. After the loss, the rows of the
batch's own indices are updated: ``m <- normalise(MOMENTUM * m + (1 - MOMENTUM) * v)``.

Memory: the banks are buffers (state saved in the distiller checkpoint), 2 × N × DIM floats — 51.2 MB in
float32 for CIFAR-100's 50,000 images at DIM 128. They are not parameters, so ``get_extra_parameters()``
(which counts parameters) reports only the two embedding heads.

``CRD.FEAT.STUDENT_DIM``/``TEACHER_DIM`` are kept for mdistiller config compatibility; the heads' input
sizes are read from the networks' ``pooled_feat`` (a dummy forward at construction), so any pair works.
Under torch.distributed the batch embeddings and indices are all-gathered before the bank update, so
every rank keeps identical banks (DistributedSampler gives all ranks equal batch sizes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from yacs.config import CfgNode as CN

from ..dataset.crd import ContrastiveDataset
from ..errors import ConfigError
from ..losses.contrastive import contrast_scores, estimate_normalisation, momentum_update_, nce_loss
from .base import Distiller, probe_features, probe_input_size
from .registry import register_distiller

_C = CN()
_C.MODE = "exact"  # exact | relax (how ContrastiveDataset draws negatives)
_C.FEAT = CN()
_C.FEAT.DIM = 128
_C.FEAT.STUDENT_DIM = 256
_C.FEAT.TEACHER_DIM = 256
_C.LOSS = CN()
_C.LOSS.CE_WEIGHT = 1.0
_C.LOSS.FEAT_WEIGHT = 0.8
_C.NCE = CN()
_C.NCE.K = 16384
_C.NCE.MOMENTUM = 0.5
_C.NCE.TEMPERATURE = 0.07


class Embed(nn.Module):
    """``Linear(in_dim, out_dim)`` followed by L2 normalisation of each row."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.linear(x.flatten(1)), p=2, dim=1)


def _all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``x`` over all ranks (``x`` itself outside torch.distributed)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return x
    world = torch.distributed.get_world_size()
    if world == 1:
        return x
    out = torch.empty((world * x.shape[0],) + tuple(x.shape[1:]), dtype=x.dtype, device=x.device)
    gather = getattr(torch.distributed, "all_gather_single", None) or torch.distributed.all_gather_into_tensor
    gather(out, x.contiguous())
    return out


@register_distiller("CRD", config=_C)
class CRD(Distiller):
    """Cross-entropy plus ``FEAT_WEIGHT * (NCE(student anchor, teacher bank) + NCE(teacher anchor, student
    bank))``. Built as ``CRD(student, teacher, cfg, num_data)``; train batches carry ``index`` and
    ``contrastive_index`` (``train_batch_layout = "crd"``)."""

    train_batch_layout = "crd"

    @classmethod
    def wrap_train_set(cls, splits, cfg):
        """Train items gain ``contrastive_index``: the positive and ``CRD.NCE.K`` negatives (``CRD.MODE``)."""

        return ContrastiveDataset(splits.train, splits.train_targets, splits.num_classes, cfg.CRD.NCE.K, cfg.CRD.MODE)

    def __init__(self, student: nn.Module, teacher: nn.Module, cfg, num_data: int) -> None:
        super().__init__(student, teacher)
        if cfg.CRD.MODE not in ("exact", "relax"):
            raise ConfigError(f"CRD.MODE must be 'exact' or 'relax', got {cfg.CRD.MODE!r}")
        if num_data < 2:
            raise ConfigError(f"CRD needs the train-set size (num_data >= 2), got {num_data}")
        self.ce_weight = cfg.CRD.LOSS.CE_WEIGHT
        self.feat_weight = cfg.CRD.LOSS.FEAT_WEIGHT
        self.num_negatives = int(cfg.CRD.NCE.K)
        self.temperature = float(cfg.CRD.NCE.TEMPERATURE)
        self.momentum = float(cfg.CRD.NCE.MOMENTUM)
        self.num_data = int(num_data)
        dim = int(cfg.CRD.FEAT.DIM)
        size = probe_input_size(cfg)
        s_dim = probe_features(student, size)[1]["pooled_feat"].flatten(1).shape[1]
        t_dim = probe_features(teacher, size)[1]["pooled_feat"].flatten(1).shape[1]
        self.embed_s = Embed(s_dim, dim)
        self.embed_t = Embed(t_dim, dim)
        # memory banks: random unit rows; Z < 0 means "not estimated yet"
        self.register_buffer("memory_student", F.normalize(torch.randn(self.num_data, dim), dim=1))
        self.register_buffer("memory_teacher", F.normalize(torch.randn(self.num_data, dim), dim=1))
        self.register_buffer("z_student", torch.tensor(-1.0))
        self.register_buffer("z_teacher", torch.tensor(-1.0))

    @classmethod
    def build(cls, student, teacher, cfg, num_data: int) -> "CRD":
        return cls(student, teacher, cfg, num_data)

    @staticmethod
    def _normalised(scores: torch.Tensor, z: torch.Tensor, num_data: int) -> torch.Tensor:
        """``scores / Z``, estimating ``Z`` (averaged over ranks) the first time it is needed."""
        if float(z) <= 0:
            estimate = estimate_normalisation(scores, num_data)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.all_reduce(estimate)
                estimate = estimate / torch.distributed.get_world_size()
            z.copy_(estimate)
        return scores / z

    def crd_loss(
        self, v_s: torch.Tensor, v_t: torch.Tensor, index: torch.Tensor, contrastive_index: torch.Tensor
    ) -> torch.Tensor:
        """The two NCE terms for unit embeddings ``v_s``, ``v_t``; then updates both banks at ``index``."""
        if contrastive_index.shape[1] != self.num_negatives + 1:
            raise ValueError(
                f"contrastive_index has {contrastive_index.shape[1]} columns, expected CRD.NCE.K + 1 = "
                f"{self.num_negatives + 1}"
            )
        scores_t = contrast_scores(self.memory_teacher, contrastive_index, v_s, self.temperature)
        scores_s = contrast_scores(self.memory_student, contrastive_index, v_t, self.temperature)
        probs_t = self._normalised(scores_t, self.z_teacher, self.num_data)
        probs_s = self._normalised(scores_s, self.z_student, self.num_data)
        loss = nce_loss(probs_t, self.num_data) + nce_loss(probs_s, self.num_data)
        with torch.no_grad():
            all_index = _all_gather(index)
            momentum_update_(self.memory_student, all_index, _all_gather(v_s.detach().float()), self.momentum)
            momentum_update_(self.memory_teacher, all_index, _all_gather(v_t.detach().float()), self.momentum)
        return loss

    def forward_train(self, image, target, index=None, contrastive_index=None, **kwargs):
        if index is None or contrastive_index is None:
            raise ValueError("CRD needs `index` and `contrastive_index` in its train batches "
                             "(wrap the train set in ContrastiveDataset; SOLVER.TRAINER crd)")
        logits_student, feats_student = self.student(image)
        _, feats_teacher = self.teacher_forward(image)
        index = index.to(image.device).long()
        contrastive_index = contrastive_index.to(image.device).long()
        v_s = self.embed_s(feats_student["pooled_feat"])
        v_t = self.embed_t(feats_teacher["pooled_feat"])
        losses = {
            "loss_ce": self.ce_weight * F.cross_entropy(logits_student, target),
            "loss_feat": self.feat_weight * self.crd_loss(v_s, v_t, index, contrastive_index),
        }
        return logits_student, losses
