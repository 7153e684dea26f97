"""Spatial alignment of a student and a teacher feature map of different resolution."""

from __future__ import annotations

from typing import Tuple

import torch
import torch.nn.functional as F

ALIGN_MODES = ("pool", "interpolate")


def align_spatial(
    student: torch.Tensor, teacher: torch.Tensor, mode: str = "pool"
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Bring (B,Cs,Hs,Ws) and (B,Ct,Ht,Wt) to one spatial size.

    ``pool``: adaptive-average-pool the larger map to the smaller size (DDKD's decision);
    ``interpolate``: bilinearly upsample the smaller map to the larger size. Equal sizes pass unchanged.
    """
    if mode not in ALIGN_MODES:
        raise ValueError(f"feature alignment mode must be one of {ALIGN_MODES}, got {mode!r}")
    s_size, t_size = tuple(student.shape[-2:]), tuple(teacher.shape[-2:])
    if s_size == t_size:
        return student, teacher
    s_larger = s_size[0] * s_size[1] > t_size[0] * t_size[1]
    if mode == "pool":
        if s_larger:
            return F.adaptive_avg_pool2d(student, t_size), teacher
        return student, F.adaptive_avg_pool2d(teacher, s_size)
    if s_larger:
        return student, F.interpolate(teacher, size=s_size, mode="bilinear", align_corners=False)
    return F.interpolate(student, size=t_size, mode="bilinear", align_corners=False), teacher
