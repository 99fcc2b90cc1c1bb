"""Copy protocols: how people re-upload a photo. Each kind is a seeded function
(bytes, rng) -> bytes; the same seed gives the same copies.

- near_duplicate: cropped to 70-90 %, maybe mirrored, brightness and colour jittered, rotated up
  to 10 degrees, JPEG quality 60-90 (the protocol of our relevance test);
- heavy_crop: a 35-60 % window at a random place;
- reframe: the whole photo letterboxed or pillarboxed on a canvas of another shape, with a plain
  border (a re-framing that keeps every pixel);
- recolour: strong colour and contrast changes, sometimes grayscale;
- pasted: the photo shrunk to 30-50 % of the width of another photo from the set and pasted
  into it (a collage, a screenshot) — the hard case for one vector per image.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageOps


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _jpeg(img: Image.Image, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(60, 91)))
    return buffer.getvalue()


def near_duplicate(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    w, h = img.size
    scale = rng.uniform(0.7, 0.9)
    cw, ch = int(w * scale), int(h * scale)
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.8, 1.2))
    img = img.rotate(rng.uniform(-10, 10), resample=Image.Resampling.BILINEAR, expand=False)
    return _jpeg(img, rng)


def heavy_crop(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    w, h = img.size
    scale = rng.uniform(0.35, 0.6)
    cw, ch = max(16, int(w * scale)), max(16, int(h * scale))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return _jpeg(img.crop((left, top, left + cw, top + ch)), rng)


def reframe(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    w, h = img.size
    aspect = rng.choice([9 / 16, 1.0, 16 / 9]) if w != h else rng.choice([9 / 16, 16 / 9])
    canvas_w, canvas_h = (max(w, int(h * aspect)), h) if w / h < aspect else (w, max(h, int(w / aspect)))
    shade = tuple(int(v) for v in rng.integers(0, 256, 3))
    canvas = Image.new("RGB", (canvas_w, canvas_h), shade)
    canvas.paste(img, ((canvas_w - w) // 2, (canvas_h - h) // 2))
    return _jpeg(canvas, rng)


def recolour(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    if rng.random() < 0.3:
        img = ImageOps.grayscale(img).convert("RGB")
    else:
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.3, 1.8))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.6, 1.5))
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.6, 1.4))
    return _jpeg(img, rng)


def pasted(data: bytes, rng: np.random.Generator, backgrounds: list[bytes]) -> bytes:
    """`data` shrunk and pasted into one of `backgrounds` (another photo of the set)."""
    img = _open(data)
    base = _open(backgrounds[int(rng.integers(0, len(backgrounds)))])
    width = int(base.width * rng.uniform(0.3, 0.5))
    small = img.resize((width, max(1, int(img.height * width / img.width))), Image.Resampling.BICUBIC)
    small = small.crop((0, 0, small.width, min(small.height, base.height)))
    left = int(rng.integers(0, base.width - small.width + 1))
    top = int(rng.integers(0, base.height - small.height + 1))
    base.paste(small, (left, top))
    return _jpeg(base, rng)


Kind = Callable[[bytes, np.random.Generator], bytes]
KINDS: dict[str, Kind] = {
    "near-duplicate": near_duplicate,
    "heavy-crop": heavy_crop,
    "reframe": reframe,
    "recolour": recolour,
}  # fmt: skip  ("pasted" needs the other photos: see copies())


def copies(images: list[bytes], kind: str, rng: np.random.Generator) -> list[bytes]:
    """One copy of each image of the set by protocol `kind` (KINDS, or "pasted": into another photo)."""
    if kind == "pasted":
        return [pasted(data, rng, images[:i] + images[i + 1 :]) for i, data in enumerate(images)]
    return [KINDS[kind](data, rng) for data in images]


ALL_KINDS = (*KINDS, "pasted")
