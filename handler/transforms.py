"""RGB `PIL.Image` -> uint8 `[3,S,S]` tensor -> normalised float32 `[N,3,S,S]` batch.

Resize and crop run per image on uint8 (cheap, exactly as torchvision does them on
PIL images); the float conversion and mean/std normalisation run once per batch.
With fit "crop" the result equals `weights.transforms()` of the backbone
(tests/handler/test_transforms.py); fit "full" resizes the whole image to S x S instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

_PIL_FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class PreprocessSpec:
    """How one backbone wants its pixels: resize short side, centre crop, normalise."""

    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after scaling the short side to `short_side`, as torchvision rounds it."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def resize_crop(img: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """One RGB image -> uint8 tensor `[3, crop, crop]` (resize short side, centre crop)."""
    width, height = resized_size(img.width, img.height, spec.resize)
    if (width, height) != img.size:
        # Pillow's resize filters are antialiased when downscaling, as torchvision's PIL path.
        img = img.resize((width, height), _PIL_FILTERS[spec.interpolation])
    top = round((height - spec.crop) / 2.0)
    left = round((width - spec.crop) / 2.0)
    return _chw(img.crop((left, top, left + spec.crop, top + spec.crop)))


def resize_full(img: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """One RGB image -> uint8 tensor `[3, crop, crop]`: the whole image, resized (aspect not kept)."""
    if img.size != (spec.crop, spec.crop):
        img = img.resize((spec.crop, spec.crop), _PIL_FILTERS[spec.interpolation])
    return _chw(img)


def _chw(img: Image.Image) -> torch.Tensor:
    """An RGB image as a uint8 tensor `[3, H, W]` (its own copy of the pixels)."""
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


FIT = {"crop": resize_crop, "full": resize_full}


def normalize_batch(pixels: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 `[N,3,S,S]` -> float32 `[N,3,S,S]`: scale to [0,1], subtract mean, divide by std."""
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
    return pixels.to(torch.float32).div_(255.0).sub_(mean).div_(std)


def preprocess(images: list[Image.Image], spec: PreprocessSpec) -> torch.Tensor:
    """RGB images -> normalised float32 batch `[N,3,crop,crop]`."""
    return normalize_batch(torch.stack([resize_crop(img, spec) for img in images]), spec)
