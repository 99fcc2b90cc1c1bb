"""bytes -> RGB `PIL.Image`: the one place uploads are decoded, guarded and normalised.

Real uploads arrive rotated by EXIF, with alpha, as palettes, CMYK, 16-bit
greyscale or animations. Each becomes an upright 8-bit RGB image, or an
`ImageError` with a reason a person understands.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import (
    CorruptImage,
    EmptyImage,
    ImageTooLarge,
    ImageTooSmall,
    NotAnImage,
    UnsupportedFormat,
)

# A truncated upload is an error, never a half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "MPO")
_ACCEPTED_NAMES = "JPEG, PNG, GIF, WebP, BMP or TIFF"

# Signatures of image formats Pillow cannot read here, so the reason names them.
_KNOWN_UNSUPPORTED = (
    (4, b"ftypheic", "HEIC"),
    (4, b"ftypheix", "HEIC"),
    (4, b"ftypmif1", "HEIF"),
    (4, b"ftypavif", "AVIF"),
    (0, b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (0, b"\xff\x0a", "JPEG XL"),
    (0, b"%PDF", "PDF"),
)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 16


DEFAULT_LIMITS = Limits()


def decode_image(
    data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS, draft_short_side: int | None = None
) -> Image.Image:
    """Decode one upload into an upright RGB image (mode "RGB", 8 bits per channel).

    `draft_short_side`: let the JPEG decoder scale down by 1/2, 1/4 or 1/8 in the DCT while the
    short side stays at least this long (much faster for big photos; pixels differ slightly
    from a full decode, so it is off by default). Raises an `ImageError` subclass for anything
    that is not a usable image.
    """
    size = len(data)
    if size == 0:
        raise EmptyImage("empty body: send the image bytes")
    if size > limits.max_bytes:
        raise ImageTooLarge(f"image is {size} bytes; the limit is {limits.max_bytes} bytes")
    head = bytes(data[:64])
    _reject_known_non_images(head)

    try:
        # Pillow raises DecompressionBombError only past 2x its global limit; we check our own
        # limit from the header below, before any pixel is decoded.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"image has too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(f"not a recognised image; send {_ACCEPTED_NAMES}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"cannot read image header: {exc}") from exc

    if img.format not in ACCEPTED_FORMATS:
        raise UnsupportedFormat(f"{img.format} images are not supported; send {_ACCEPTED_NAMES}")
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}")
    if min(width, height) < limits.min_side:
        raise ImageTooSmall(f"image is {width}x{height}; each side must be at least {limits.min_side} pixels")

    try:
        img.seek(0)  # animated GIF/WebP/APNG: the first frame
        if draft_short_side and img.format in ("JPEG", "MPO"):
            scale = draft_short_side / min(width, height)
            if scale <= 0.5:  # Pillow keeps the result at least this large
                img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        img.load()
        return to_rgb(ImageOps.exif_transpose(img))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"{img.format} image is truncated or corrupt: {exc}") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_bit_depth_to_rgb(img)
    if (mode == "P" and "transparency" in img.info) or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_bit_depth_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit (or 32-bit int / float) greyscale -> 8-bit RGB by scaling the full range."""
    array = np.asarray(img)
    if img.mode == "F":
        scaled = np.clip(array, 0.0, 1.0) * 255.0 if array.max(initial=0.0) <= 1.0 else array
    else:
        # 16-bit sources span 0..65535; 257 maps 65535 to 255 exactly.
        scaled = array.astype(np.float64) / 257.0
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _reject_known_non_images(head: bytes) -> None:
    for offset, magic, name in _KNOWN_UNSUPPORTED:
        if head[offset : offset + len(magic)] == magic:
            raise UnsupportedFormat(f"{name} images are not supported; send {_ACCEPTED_NAMES}")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise NotAnImage("body is HTML, not an image")
    if text.startswith((b"<?xml", b"<svg")):
        raise UnsupportedFormat(f"SVG/XML is not supported; send {_ACCEPTED_NAMES}")
    if text[:1] in (b"{", b"[") and _is_text(head):
        raise NotAnImage("body is JSON text, not an image (base64 JSON needs Content-Type: application/json)")
    if _is_text(head):
        raise NotAnImage("body is text, not an image")


def _is_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in decoded)
