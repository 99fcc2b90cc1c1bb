"""The int8 trunk of an archive, made when it is built (`lookalike mar --precision int8`): calibrated
on augmented views of the bundled photos, then held to fp32's answers on the photos themselves
(lookalike_handler.quantize: per-image cosine >= 0.99, top-10 overlap >= 0.95). A trunk that misses
the bound is refused with its figures, and no archive is written.

Measured (in-process, batch 8, 2 cores, this machine's Xeon with AMX): ResNet50 fp32 30 img/s,
bf16 98, int8 230 (314 traced and frozen, as shipped): 3.2x bf16. EfficientNet-Lite0 int8 runs at
7 img/s (bf16 200) and its vectors are 0.65 from fp32's (its depthwise layers do not quantize
per tensor): the bound refuses it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from lookalike_handler import backbones, quantize
from lookalike_handler.transforms import FIT, normalize_batch
from PIL import Image, ImageEnhance, ImageOps

from lookalike.errors import LookalikeError
from lookalike.photos import interior_photos, subject_photos

BATCH = 8


class BoundMissed(LookalikeError):
    """The int8 trunk's vectors are not close enough to fp32's to stand in for them."""


def views(img: Image.Image) -> list[Image.Image]:
    """Augmented views for calibration: mirrored, an 80 % centre crop, brighter, paler."""
    w, h = img.size
    crop = img.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    return [ImageOps.mirror(img), crop, ImageEnhance.Brightness(img).enhance(1.3), ImageEnhance.Color(img).enhance(0.5)]


def batches(images: list[Image.Image], spec) -> list[torch.Tensor]:
    pixels = torch.stack([FIT["crop"](img, spec) for img in images])
    normalised = normalize_batch(pixels, spec)
    return [normalised[start : start + BATCH] for start in range(0, len(normalised), BATCH)]


def make(model: str, weights_path: str | None, out: Path, seed: int = 0) -> dict:
    """Write the int8 trunk of `model` (weights from `weights_path`, else seeded random weights, as
    the worker builds them) to `out`; return the bound's figures. Raises BoundMissed, writing nothing."""
    backbone = backbones.get_backbone(model)
    if weights_path is None:
        torch.manual_seed(seed)
    fp32 = backbone.build(weights_path)
    bundled = {**subject_photos(), **interior_photos()}
    photos = [Image.open(io.BytesIO(data)).convert("RGB") for data in bundled.values()]
    trunk = quantize.int8(fp32, batches([view for img in photos for view in views(img)], backbone.spec))
    with torch.inference_mode():
        held = batches(photos, backbone.spec)
        reference = torch.cat([fp32(batch) for batch in held])
        got = torch.cat([trunk(batch) for batch in held])
    figures = quantize.agreement(reference, got)
    figures["random_weights"] = weights_path is None
    problems = quantize.misses(figures)
    if problems and weights_path is not None:
        raise BoundMissed(f"int8 {model} does not keep fp32's answers on the {len(photos)} bundled photos: "
                          + "; ".join(problems) + ". No archive written; use --precision bf16 or fp32.")  # fmt: skip
    torch.jit.save(trunk, str(out))
    out.with_suffix(".json").write_text(json.dumps({k: round(v, 5) if isinstance(v, float) else v
                                                    for k, v in figures.items()}, indent=2))  # fmt: skip
    return figures
