"""ReviewKD's hierarchical context loss (HCL): Chen et al., "Distilling Knowledge via Knowledge Review"
(CVPR 2021), as a pure function.

For each level, a student map ``s`` (already fused and resized to the teacher's shape) and the teacher's
``t`` of shape (B, C, H, W)::

    HCL(s, t) = (MSE(s, t) + Σ_k w_k · MSE(pool_k(s), pool_k(t))) / (1 + Σ_k w_k)

where ``pool_k`` is adaptive average pooling to k×k for the pyramid sizes k = 4, 2, 1 that are smaller than
H (a size ``k >= H`` is skipped), and the weights halve with every size *used*: 1/2, 1/4, 1/8 for the first,
second and third (so an 8×8 map uses 4, 2, 1 with 1/2, 1/4, 1/8; a 4×4 map 2, 1 with 1/2, 1/4; a 1×1 map
only the full-resolution term). MSE is the mean over all elements. The loss is the sum over levels.

Config (mdistiller's defaults; its CIFAR-100 file for resnet32x4 -> resnet8x4 sets REVIEWKD_WEIGHT 5.0)::

    DISTILLER: {TYPE: REVIEWKD}
    REVIEWKD: {CE_WEIGHT: 1.0, REVIEWKD_WEIGHT: 1.0, WARMUP_EPOCHS: 20}
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: the pyramid's pooled sizes, in the order their weights halve
HCL_PYRAMID = (4, 2, 1)


def hcl_level(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """HCL of one level: the weighted mean of the full-resolution and the pyramid MSEs (see the module)."""
    if student.shape != teacher.shape:
        raise ValueError(f"HCL: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ in shape")
    height = student.shape[-2]
    loss = F.mse_loss(student, teacher)
    weight, total = 1.0, 1.0
    for size in HCL_PYRAMID:
        if size >= height:
            continue
        weight /= 2.0
        pooled_s = F.adaptive_avg_pool2d(student, (size, size))
        pooled_t = F.adaptive_avg_pool2d(teacher, (size, size))
        loss = loss + weight * F.mse_loss(pooled_s, pooled_t)
        total += weight
    return loss / total


def hcl_loss(students: Sequence[torch.Tensor], teachers: Sequence[torch.Tensor]) -> torch.Tensor:
    """ReviewKD's HCL summed over paired levels (same order, same shapes)."""
    if len(students) != len(teachers) or not students:
        raise ValueError(f"HCL: {len(students)} student levels for {len(teachers)} teacher levels")
    total = students[0].new_zeros(())
    for s, t in zip(students, teachers):
        total = total + hcl_level(s, t)
    return total
