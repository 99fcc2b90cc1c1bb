"""JPEG bytes -> uint8 pixels on the worker's device, a batch at a time: the GPU path.

On a CUDA worker the CPU is what limits images/s (decoding a photo with Pillow takes tens of ms of a
core), so JPEGs are decoded together on the GPU (torchvision's `decode_jpeg` on a list, nvJPEG) and
resized and cropped there as tensor ops; only the bytes cross to the device.

The device path takes what it can do exactly: an 8-bit JPEG in RGB or greyscale, whole image
(no region scheme). Its header is read first (Pillow parses headers without decoding pixels), so
the byte, pixel and side limits refuse an upload before any decoding, with the same errors as the
CPU path. Everything else goes to the CPU path (decode.py) one image at a time: other formats, CMYK
and 12-bit JPEGs, region schemes, and any JPEG the device decoder refuses (a corrupt one then gets
the CPU path's own error). EXIF orientation is applied as a tensor op.

`preprocess` is the same resize-short-side and centre crop as transforms.py, done by torchvision's
tensor resize with antialiasing: on the real photos its vectors match the CPU path's within our
bound (tests/handler/test_device_decode.py runs this path on the CPU).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import torch
from PIL import Image, UnidentifiedImageError

from .decode import Limits
from .errors import ImageTooLarge, ImageTooSmall
from .transforms import PreprocessSpec, resized_size

EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class Header:
    width: int
    height: int
    orientation: int  # EXIF 1..8; 1: as stored


def header(data: bytes, limits: Limits) -> Header | None:
    """The header of an upload the device path can decode, or None (the CPU path takes it). Raises
    the CPU path's ImageTooLarge / ImageTooSmall from the header alone."""
    if data[:2] != b"\xff\xd8" or len(data) > limits.max_bytes:
        return None  # not a JPEG, or over the byte limit: the CPU path says which
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))  # reads the header only
            if img.format != "JPEG" or img.mode not in ("RGB", "L") or img.info.get("bits", 8) != 8:
                return None
            width, height = img.size
            orientation = int(img.getexif().get(EXIF_ORIENTATION, 1) or 1)
    except (Image.DecompressionBombError, UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return None
    if width * height > limits.max_pixels:
        raise ImageTooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}")
    if min(width, height) < limits.min_side:
        raise ImageTooSmall(f"image is {width}x{height}; each side must be at least {limits.min_side} pixels")
    return Header(width, height, orientation if 1 <= orientation <= 8 else 1)


def decode(blobs: list[bytes], device: torch.device) -> list[torch.Tensor | None]:
    """JPEGs -> uint8 `[3,H,W]` on `device`, decoded as one batch; None for each the decoder refused
    (the batch is tried again one image at a time when it fails as a whole)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not blobs:
        return []
    data = [torch.frombuffer(bytearray(blob), dtype=torch.uint8) for blob in blobs]
    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        pass
    decoded: list[torch.Tensor | None] = []
    for one in data:
        try:
            decoded.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
        except RuntimeError:
            decoded.append(None)
    return decoded


def orient(pixels: torch.Tensor, orientation: int) -> torch.Tensor:
    """uint8 `[3,H,W]` as stored -> upright, as Pillow's exif_transpose turns it."""
    if orientation in (2, 4, 5, 7):  # the mirrored ones: flip, then turn as their unmirrored twin
        pixels = pixels.flip(-1)
        orientation = {2: 1, 4: 3, 5: 8, 7: 6}[orientation]
    turns = {1: 0, 3: 2, 6: -1, 8: 1}[orientation]  # quarter turns counter-clockwise
    return torch.rot90(pixels, turns, dims=(-2, -1)) if turns else pixels


def preprocess(pixels: torch.Tensor, spec: PreprocessSpec, fit: str = "crop") -> torch.Tensor:
    """uint8 `[3,H,W]` -> uint8 `[3,S,S]` on its device: resize the short side and centre crop
    (fit "crop"), or resize the whole image to S x S (fit "full"), antialiased as Pillow is."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    mode = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}[spec.interpolation]
    height, width = pixels.shape[-2:]
    if fit == "full":
        size = (spec.crop, spec.crop)
        return pixels if (height, width) == size else F.resize(pixels, list(size), interpolation=mode, antialias=True)
    new_width, new_height = resized_size(width, height, spec.resize)
    if (new_width, new_height) != (width, height):
        pixels = F.resize(pixels, [new_height, new_width], interpolation=mode, antialias=True)
    top = round((new_height - spec.crop) / 2.0)
    left = round((new_width - spec.crop) / 2.0)
    return pixels[:, top : top + spec.crop, left : left + spec.crop]
