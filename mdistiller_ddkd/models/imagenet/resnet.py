"""ImageNet ResNet-18/34/50/101 on torchvision's implementation (identical state-dict keys), with a
``forward`` that returns ``(logits, feats)`` like mdistiller's ImageNet ResNets."""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch.nn.functional as F
import torchvision
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

__all__ = ["ResNet", "ResNet18", "ResNet34", "ResNet50", "ResNet101", "load_torchvision_weights"]


def _block_preact(block: nn.Module, x: Tensor) -> Tensor:
    """A torchvision BasicBlock/Bottleneck's output before its final ReLU."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        out = block.bn3(block.conv3(out))
    else:
        out = block.bn2(block.conv2(out))
    return out + identity


class ResNet(torchvision.models.ResNet):
    """torchvision's ResNet whose ``forward`` returns ``(logits, feats)``.

    ``feats["feats"]`` = [stem (after ReLU, before max-pooling), stage1..stage4 (after ReLU)],
    ``feats["preact_feats"]`` = [stem, stage1..stage4 before their last ReLU],
    ``feats["pooled_feat"]`` the pooled vector fed to ``fc``.
    """

    def _stage(self, layer: nn.Sequential, x: Tensor) -> Tensor:
        for block in list(layer)[:-1]:
            x = block(x)
        return _block_preact(layer[-1], x)

    def forward(self, x: Tensor) -> Tuple[Tensor, Dict[str, object]]:  # type: ignore[override]
        x = self.relu(self.bn1(self.conv1(x)))
        stem = x
        x = self.maxpool(x)
        feat1 = self._stage(self.layer1, x)
        feat2 = self._stage(self.layer2, F.relu(feat1))
        feat3 = self._stage(self.layer3, F.relu(feat2))
        feat4 = self._stage(self.layer4, F.relu(feat3))
        x = F.relu(feat4)
        avg = self.avgpool(x).reshape(x.size(0), -1)
        logits = self.fc(avg)
        feats = {
            "feats": [stem, F.relu(feat1), F.relu(feat2), F.relu(feat3), x],
            "preact_feats": [stem, feat1, feat2, feat3, feat4],
            "pooled_feat": avg,
        }
        return logits, feats

    def get_bn_before_relu(self) -> List[nn.BatchNorm2d]:
        """The last BatchNorm of the last block of stages 2-4 (as mdistiller's ImageNet ResNets, which leave
        stage 1 out: OFD distils the three deepest stages at ImageNet scale)."""
        layers = [self.layer2, self.layer3, self.layer4]
        if isinstance(self.layer1[0], Bottleneck):
            return [layer[-1].bn3 for layer in layers]
        return [layer[-1].bn2 for layer in layers]

    def get_stage_channels(self) -> List[int]:
        """mdistiller's (fixed) stage channels for its ImageNet ResNets: [256, 512, 1024, 2048]."""
        return [256, 512, 1024, 2048]


_WEIGHTS = {
    "ResNet18": "ResNet18_Weights",
    "ResNet34": "ResNet34_Weights",
    "ResNet50": "ResNet50_Weights",
    "ResNet101": "ResNet101_Weights",
}


def load_torchvision_weights(model: nn.Module, name: str) -> nn.Module:
    """Load torchvision's IMAGENET1K_V1 weights for ``name`` (e.g. ``"ResNet50"``) into ``model``.

    Uses torchvision's weights API, which downloads into (or reads from) the torch hub cache
    (``$TORCH_HOME/hub/checkpoints``, by default ``~/.cache/torch/hub/checkpoints``). Raises a
    RuntimeError explaining where to place the file when it cannot be obtained.
    """
    weights = getattr(torchvision.models, _WEIGHTS[name]).IMAGENET1K_V1
    try:
        state_dict = weights.get_state_dict(progress=False, check_hash=False)
    except Exception as exc:  # offline: URLError, HTTPError, OSError, ...
        import torch.hub

        cache = torch.hub.get_dir() + "/checkpoints"
        filename = weights.url.rsplit("/", 1)[-1]
        raise RuntimeError(
            f"Could not download torchvision's pretrained {name} weights ({weights.url}): {exc}. "
            f"On an offline machine, download that file elsewhere and place it at {cache}/{filename} "
            "(the torch hub cache; set TORCH_HOME to move it), then retry."
        ) from exc
    model.load_state_dict(state_dict, strict=True)
    return model


def _build(block, layers: List[int], name: str, num_classes: int, pretrained: bool) -> ResNet:
    model = ResNet(block, layers, num_classes=1000 if pretrained else num_classes)
    if pretrained:
        load_torchvision_weights(model, name)
        if num_classes != 1000:
            model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def ResNet18(num_classes: int = 1000, pretrained: bool = False) -> ResNet:
    """ImageNet ResNet-18 (torchvision layout)."""
    return _build(BasicBlock, [2, 2, 2, 2], "ResNet18", num_classes, pretrained)


def ResNet34(num_classes: int = 1000, pretrained: bool = False) -> ResNet:
    """ImageNet ResNet-34 (torchvision layout)."""
    return _build(BasicBlock, [3, 4, 6, 3], "ResNet34", num_classes, pretrained)


def ResNet50(num_classes: int = 1000, pretrained: bool = False) -> ResNet:
    """ImageNet ResNet-50 (torchvision layout)."""
    return _build(Bottleneck, [3, 4, 6, 3], "ResNet50", num_classes, pretrained)


def ResNet101(num_classes: int = 1000, pretrained: bool = False) -> ResNet:
    """ImageNet ResNet-101 (torchvision layout)."""
    return _build(Bottleneck, [3, 4, 23, 3], "ResNet101", num_classes, pretrained)
