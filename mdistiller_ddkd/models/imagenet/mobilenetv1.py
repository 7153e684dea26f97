"""MobileNetV1 (Howard et al.) for ImageNet, in mdistiller's layout (``model.<i>`` sequential, ``fc``)."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MobileNetV1"]


def _conv_bn(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True)
    )


def _conv_dw(inp: int, oup: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.ReLU(inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 for 224x224 inputs: a stride-2 stem, 13 depthwise-separable blocks, 7x7 average pooling.

    ``feats["feats"]`` = outputs (after ReLU) of blocks 3, 5, 11, 13 (128@56, 256@28, 512@14, 1024@7);
    ``feats["preact_feats"]`` the same before their last ReLU; ``feats["pooled_feat"]`` the 1024-d vector.
    """

    def __init__(self, num_classes: int = 1000, pretrained: bool = False) -> None:
        super().__init__()
        if pretrained:
            raise RuntimeError(
                "No pretrained ImageNet weights are bundled for MobileNetV1 (torchvision has none); as a "
                "teacher or for evaluation, give a checkpoint in mdistiller's format ({'model': state_dict}) "
                "with DISTILLER.TEACHER_CKPT or tools/eval.py -c"
            )
        self.model = nn.Sequential(
            _conv_bn(3, 32, 2),
            _conv_dw(32, 64, 1),
            _conv_dw(64, 128, 2),
            _conv_dw(128, 128, 1),
            _conv_dw(128, 256, 2),
            _conv_dw(256, 256, 1),
            _conv_dw(256, 512, 2),
            _conv_dw(512, 512, 1),
            _conv_dw(512, 512, 1),
            _conv_dw(512, 512, 1),
            _conv_dw(512, 512, 1),
            _conv_dw(512, 512, 1),
            _conv_dw(512, 1024, 2),
            _conv_dw(1024, 1024, 1),
            nn.AvgPool2d(7),
        )
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:
        feat1 = self.model[3][:-1](self.model[0:3](x))
        feat2 = self.model[5][:-1](self.model[4:5](F.relu(feat1)))
        feat3 = self.model[11][:-1](self.model[6:11](F.relu(feat2)))
        feat4 = self.model[13][:-1](self.model[12:13](F.relu(feat3)))
        pooled = self.model[14](F.relu(feat4))
        avg = pooled.reshape(pooled.size(0), -1)
        logits = self.fc(avg)
        feats = {
            "feats": [F.relu(feat1), F.relu(feat2), F.relu(feat3), F.relu(feat4)],
            "preact_feats": [feat1, feat2, feat3, feat4],
            "pooled_feat": avg,
        }
        return logits, feats

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        """The BatchNorm before the last ReLU of blocks 3, 5, 11 and 13."""
        return [self.model[3][-2], self.model[5][-2], self.model[11][-2], self.model[13][-2]]

    def get_stage_channels(self) -> List[int]:
        """Channels of ``feats["feats"]``: [128, 256, 512, 1024]."""
        return [128, 256, 512, 1024]
