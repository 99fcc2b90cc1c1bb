"""The near-duplicate protocol: a copy of a photo as people re-upload it — cropped to 70-90 %,
maybe mirrored, brightness and colour jittered, rotated up to 10 degrees, re-encoded as JPEG at
quality 60-90. Seeded: the same seed gives the same copies."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageEnhance, ImageOps


def near_duplicate(data: bytes, rng: np.random.Generator) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
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
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(60, 91)))
    return buffer.getvalue()
