"""The backbone registry: model id -> dimension, preprocessing, and how to build the trunk.

Each trunk maps a normalised float batch `[N,3,224,224]` to pooled features `[N,D]`
(not yet L2-normalised). The id and dimension defined here are the single source
of truth; the archive builder copies them into model-config.yaml and the index
mapping reads them from the served model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError
from .transforms import IMAGENET_MEAN, IMAGENET_STD, PreprocessSpec


@dataclass(frozen=True)
class Backbone:
    id: str
    dimension: int
    spec: PreprocessSpec
    # (state_dict path or None for seeded random weights) -> trunk module in eval mode
    build: Callable[[str | None], nn.Module]
    weights_file: str  # the file name torch's hub cache / the package uses
    # Rows per forward pass on a CPU (0: the whole batch). Lite0's depthwise layers are bound by
    # memory, not arithmetic: a few rows at a time keep its activations in cache; ResNet50 is bound
    # by arithmetic and gains nothing from slicing (docs/constants.md).
    cpu_rows: int = 0
    # Whether `lookalike mar` (precision auto) tries an int8 trunk for it: ResNet50 yes; Lite0 no
    # (its depthwise layers do not quantize per tensor), though --precision int8 may still ask (and be
    # refused). The figures: docs/constants.md.
    int8_auto: bool = False


class ResNetTrunk(nn.Module):
    """torchvision ResNet50 without its classifier: `[N,3,H,W]` -> global-average-pooled `[N,2048]`."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(*list(resnet.children())[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.features(x), 1)


class EfficientNetLiteTrunk(nn.Module):
    """EfficientNet-Lite0 features averaged over space: `[N,3,H,W]` -> `[N,1280]`."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.net.extract_features(x)  # type: ignore[operator]  # nn.Module attribute
        return features.mean((2, 3))


def _build_resnet50(weights_path: str | None) -> nn.Module:
    from torchvision.models import resnet50

    model = resnet50(weights=None)
    if weights_path is not None:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    return ResNetTrunk(model).eval()


def _build_efficientnet_lite0(weights_path: str | None) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ConfigError("efficientnet_lite0 needs the package efficientnet-lite-pytorch") from exc
    if weights_path is None:
        net = EfficientNet.from_name("efficientnet-lite0")
    else:
        net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights_path)
    return EfficientNetLiteTrunk(net).eval()


BACKBONES: dict[str, Backbone] = {
    "resnet50": Backbone(
        id="resnet50",
        dimension=2048,
        # ResNet50_Weights.IMAGENET1K_V2.transforms()
        spec=PreprocessSpec(232, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD),
        build=_build_resnet50,
        weights_file="resnet50-11ad3fa6.pth",
        int8_auto=True,
    ),
    "efficientnet_lite0": Backbone(
        id="efficientnet_lite0",
        dimension=1280,
        # The TF EfficientNet-Lite eval preprocessing: crop 224 of 256 (bicubic), (x - 127) / 128.
        spec=PreprocessSpec(256, 224, "bicubic", (127 / 255,) * 3, (128 / 255,) * 3),
        build=_build_efficientnet_lite0,
        weights_file="efficientnet-lite0-57934424.pth",
        cpu_rows=4,
    ),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}") from None
