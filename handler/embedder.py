"""PIL images -> `[N,D]` float32 L2-normalised vectors: the model half of the pipeline.

Used by the TorchServe handler and, unchanged, by the benchmark's in-process
baseline, so "served vs raw" compares the same code.
"""

from __future__ import annotations

import logging
import os

import torch
import torch.nn.functional as F
from PIL import Image

from .backbones import Backbone, get_backbone
from .errors import ConfigError
from .precision import autocast, resolve_precision
from .settings import HandlerSettings
from .transforms import normalize_batch, resize_crop

logger = logging.getLogger(__name__)


def worker_device(gpu_id: int | str | None) -> torch.device:
    """The GPU TorchServe assigned (`gpu_id`) when CUDA is available, else the CPU."""
    if gpu_id is not None and torch.cuda.is_available():
        return torch.device("cuda", int(gpu_id))
    return torch.device("cpu")


class Embedder:
    """A loaded backbone on one device at one precision."""

    def __init__(self, backbone: Backbone, model: torch.nn.Module, device: torch.device, precision: str):
        self.backbone = backbone
        self.model = model.to(device).eval()
        self.device = device
        self.precision = precision

    @classmethod
    def load(
        cls,
        settings: HandlerSettings,
        weights_path: str | None,
        device: torch.device | str = "cpu",
    ) -> Embedder:
        """Build the backbone named in `settings` from `weights_path` (or seeded random weights)."""
        device = torch.device(device)
        backbone = get_backbone(settings.backbone)
        if settings.dimension is not None and settings.dimension != backbone.dimension:
            raise ConfigError(
                f"model-config says dimension {settings.dimension} but {backbone.id} gives {backbone.dimension}"
            )
        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        if settings.weights == "random":
            logger.warning("%s runs with RANDOM weights (seed %d): no relevance", backbone.id, settings.seed)
            torch.manual_seed(settings.seed)
            weights_path = None
        elif weights_path is None or not os.path.isfile(weights_path):
            raise ConfigError(f"weights file for {backbone.id} not found: {weights_path}")
        precision = resolve_precision(settings.precision, device)
        model = backbone.build(weights_path)
        logger.info(
            "loaded %s (%d-d) on %s at %s, %d threads",
            backbone.id,
            backbone.dimension,
            device,
            precision,
            torch.get_num_threads(),
        )
        return cls(backbone, model, device, precision)

    @property
    def dimension(self) -> int:
        return self.backbone.dimension

    def pixels(self, img: Image.Image) -> torch.Tensor:
        """One RGB image -> uint8 `[3,S,S]` (resize + crop), the per-image part of preprocessing."""
        return resize_crop(img, self.backbone.spec)

    @torch.inference_mode()
    def embed_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 `[N,3,S,S]` -> float32 `[N,D]` L2-normalised, on the CPU."""
        batch = normalize_batch(pixels.to(self.device, non_blocking=True), self.backbone.spec)
        with autocast(self.precision, self.device):
            features = self.model(batch)
        return F.normalize(features.float(), dim=1).cpu()

    def embed_images(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB images -> float32 `[N,D]` L2-normalised."""
        return self.embed_pixels(torch.stack([self.pixels(img) for img in images]))
