"""Copy protocols: how people re-upload a photo. Each kind is a seeded function (bytes, rng) ->
bytes; the same seed gives the same copies. `lookalike eval`, the int8 bound of the archive
builder, the demo's queries and the benchmarks all draw their copies here.

- near_duplicate: cropped to 70-90 %, maybe mirrored, brightness and colour jittered, rotated up
  to 10 degrees, JPEG quality 60-90 (the protocol of our relevance test);
- heavy_crop: a 35-60 % window at a random place;
- reframe: the whole photo letterboxed or pillarboxed on a canvas of another shape, with a plain
  border (a re-framing that keeps every pixel);
- recolour: strong colour and contrast changes, sometimes grayscale;
- pasted: the photo shrunk to 30-50 % of the width of another photo from the set and pasted
  into it (a collage, a screenshot) — the hard case for one vector per image;
- screenshot: the photo inside a phone screenshot: status bar, app header, caption lines and a
  button bar in flat interface colours around it, the photo 45-70 % of the screen's height;
- captioned: a meme: white bands above and below (15-25 % of the height each) with black
  blocks where the caption's words are;
- rotated: turned by 90, 180 or 270 degrees, or tilted 10-25 degrees on a plain canvas;
- angled: seen at an angle: in perspective (each corner moved in by 5-20 % of the side, as a photo
  of a screen or a keystoned scan) or sheared by 0.15-0.35 (a skewed scan), on a plain canvas.

The partial-duplicate protocol (`PARTIAL_KINDS`) is pasted, screenshot, captioned, heavy-crop and
rotated: copies where the photo is only part of the picture, or no longer upright.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps


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


def pasted(data: bytes, rng: np.random.Generator, background: bytes) -> bytes:
    """`data` shrunk and pasted into `background` (another photo of the set)."""
    img = _open(data)
    base = _open(background)
    width = int(base.width * rng.uniform(0.3, 0.5))
    small = img.resize((width, max(1, int(img.height * width / img.width))), Image.Resampling.BICUBIC)
    small = small.crop((0, 0, small.width, min(small.height, base.height)))
    left = int(rng.integers(0, base.width - small.width + 1))
    top = int(rng.integers(0, base.height - small.height + 1))
    base.paste(small, (left, top))
    return _jpeg(base, rng)


def screenshot(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    screen_w = int(rng.integers(360, 541))
    screen_h = int(screen_w * rng.uniform(1.9, 2.2))
    dark = rng.random() < 0.5
    paper = (18, 18, 18) if dark else (250, 250, 250)
    ink = (230, 230, 230) if dark else (30, 30, 30)
    canvas = Image.new("RGB", (screen_w, screen_h), paper)
    draw = ImageDraw.Draw(canvas)
    bar = int(screen_h * 0.035)
    draw.rectangle((0, 0, screen_w, bar), fill=(0, 0, 0) if dark else (225, 225, 225))  # status bar
    header = bar + int(screen_h * 0.07)
    draw.rectangle((0, bar, screen_w, header), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))  # app header
    photo_h = int(screen_h * rng.uniform(0.45, 0.7))
    photo_w = min(screen_w, int(img.width * photo_h / img.height))
    photo_h = int(img.height * photo_w / img.width)
    small = img.resize((photo_w, photo_h), Image.Resampling.BICUBIC)
    top = header + int(rng.integers(4, 40))
    canvas.paste(small, ((screen_w - photo_w) // 2, top))
    y = top + photo_h + 12
    while y < screen_h - 2 * bar:  # caption and comment lines
        width = int(screen_w * rng.uniform(0.3, 0.9))
        draw.rectangle((12, y, 12 + width, y + 8), fill=ink)
        y += int(rng.integers(16, 28))
    draw.rectangle((0, screen_h - 2 * bar, screen_w, screen_h), fill=(0, 0, 0) if dark else (235, 235, 235))
    return _jpeg(canvas, rng)


def captioned(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    top_band, bottom_band = (int(img.height * rng.uniform(0.15, 0.25)) for _ in range(2))
    canvas = Image.new("RGB", (img.width, img.height + top_band + bottom_band), (255, 255, 255))
    canvas.paste(img, (0, top_band))
    draw = ImageDraw.Draw(canvas)
    for y0, band in ((0, top_band), (top_band + img.height, bottom_band)):
        x, line = int(img.width * 0.05), band // 3
        while x < img.width * 0.9:  # words
            word = int(img.width * rng.uniform(0.05, 0.15))
            draw.rectangle((x, y0 + line, x + word, y0 + 2 * line), fill=(0, 0, 0))
            x += word + int(img.width * 0.03)
    return _jpeg(canvas, rng)


def rotated(data: bytes, rng: np.random.Generator) -> bytes:
    img = _open(data)
    if rng.random() < 0.5:
        return _jpeg(img.rotate(int(rng.choice([90, 180, 270])), expand=True), rng)
    angle = float(rng.uniform(10, 25)) * (1 if rng.random() < 0.5 else -1)
    shade = tuple(int(v) for v in rng.integers(0, 256, 3))
    return _jpeg(img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=shade), rng)


def angled(data: bytes, rng: np.random.Generator) -> bytes:
    img = np.asarray(_open(data))
    h, w = img.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    if rng.random() < 0.5:
        inward = rng.uniform(0.05, 0.2, (4, 2)) * [w, h] * [[1, 1], [-1, 1], [-1, -1], [1, -1]]
        dst, size = (src + inward).astype(np.float32), (w, h)
    else:
        shear = float(rng.uniform(0.15, 0.35)) * (1 if rng.random() < 0.5 else -1)
        along = np.array([[1, shear], [0, 1]]) if rng.random() < 0.5 else np.array([[1, 0], [shear, 1]])
        dst = (src @ along.T).astype(np.float32)
        dst -= dst.min(axis=0)
        size = (int(np.ceil(dst[:, 0].max())), int(np.ceil(dst[:, 1].max())))
    shade = tuple(int(v) for v in rng.integers(0, 256, 3))
    warped = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), size, flags=cv2.INTER_AREA,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=shade)  # fmt: skip
    return _jpeg(Image.fromarray(warped), rng)


Kind = Callable[[bytes, np.random.Generator], bytes]
KINDS: dict[str, Kind] = {
    "near-duplicate": near_duplicate,
    "heavy-crop": heavy_crop,
    "reframe": reframe,
    "recolour": recolour,
    "screenshot": screenshot,
    "captioned": captioned,
    "rotated": rotated,
    "angled": angled,
}  # fmt: skip  ("pasted" needs the other photos: see copies())


def collages(images: list[bytes], rng: np.random.Generator) -> list[tuple[bytes, int]]:
    """Each image pasted into another of the set, with the index of the photo it was pasted into."""
    out = []
    for i, data in enumerate(images):
        other = int(rng.integers(0, len(images) - 1))
        host = other if other < i else other + 1  # any image but i
        out.append((pasted(data, rng, images[host]), host))
    return out


def copies(images: list[bytes], kind: str, rng: np.random.Generator) -> list[bytes]:
    """One copy of each image of the set by protocol `kind` (KINDS, or "pasted": into another photo)."""
    if kind == "pasted":
        return [collage for collage, _ in collages(images, rng)]
    return [KINDS[kind](data, rng) for data in images]


# "angled" last: it came after "pasted", and a kind draws from the seed's stream after the kinds
# before it, so every earlier kind's seeded copies stayed as they were measured
ALL_KINDS = (*(kind for kind in KINDS if kind != "angled"), "pasted", "angled")
PARTIAL_KINDS = ("pasted", "screenshot", "captioned", "heavy-crop", "rotated")
