"""The teacher/student pairs of the paper (Tables 1-3) and of mdistiller's CIFAR-100 benchmark, stated
once: config name (mdistiller's file names, e.g. ``configs/cifar100/<method>/res32x4_res8x4.yaml``),
teacher, student and dataset.

The suites (``mdistiller_ddkd.suite``) and the tests (``tests.conftest.CIFAR_PAIRS``) read them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class PaperPair:
    name: str
    teacher: str
    student: str
    dataset: str


#: CIFAR-100 first (same family, Table 2, plus mdistiller's resnet110 -> resnet32; cross family, Table 3),
#: then ImageNet (Table 1)
PAPER_PAIRS: Tuple[PaperPair, ...] = (
    PaperPair("res32x4_res8x4", "resnet32x4", "resnet8x4", "cifar100"),
    PaperPair("res56_res20", "resnet56", "resnet20", "cifar100"),
    PaperPair("res110_res32", "resnet110", "resnet32", "cifar100"),
    PaperPair("vgg13_vgg8", "vgg13", "vgg8", "cifar100"),
    PaperPair("wrn40_2_wrn_16_2", "wrn_40_2", "wrn_16_2", "cifar100"),
    PaperPair("wrn40_2_wrn_40_1", "wrn_40_2", "wrn_40_1", "cifar100"),
    PaperPair("res32x4_shuv1", "resnet32x4", "ShuffleV1", "cifar100"),
    PaperPair("res32x4_shuv2", "resnet32x4", "ShuffleV2", "cifar100"),
    PaperPair("res50_mv2", "ResNet50", "MobileNetV2", "cifar100"),
    PaperPair("vgg13_mv2", "vgg13", "MobileNetV2", "cifar100"),
    PaperPair("wrn40_2_shuv1", "wrn_40_2", "ShuffleV1", "cifar100"),
    PaperPair("r34_r18", "ResNet34", "ResNet18", "imagenet"),
    PaperPair("r50_mv1", "ResNet50", "MobileNetV1", "imagenet"),
)


def pairs_of(dataset: str) -> Dict[str, Tuple[str, str]]:
    """``{config name: (teacher, student)}`` of the paper's pairs on ``dataset``, in the order above."""
    return {p.name: (p.teacher, p.student) for p in PAPER_PAIRS if p.dataset == dataset}


#: the eleven CIFAR-100 pairs: the ten of Tables 2 and 3 and mdistiller's resnet110 -> resnet32
CIFAR_PAIRS: Dict[str, Tuple[str, str]] = pairs_of("cifar100")
