"""Region schemes: the windows of an image that get a vector of their own besides the whole image.

A box is (left, top, right, bottom) as fractions of the image's width and height, so the same
box outlines the region on any rendering of the image. Schemes (name -> boxes, in order):

- none       no regions: one vector per image
- grid2      the 4 quadrants (side 1/2)
- win2       9 overlapping windows of side 1/2, stride 1/4 (a photo pasted anywhere at
             30-50 % of the width lies mostly inside one of them)
- win2+3     win2 plus the 4 windows of side 3/4 at the corners (two scales, 13 regions)
- grid3      9 tiles of side 1/3
"""

from __future__ import annotations

from PIL import Image

from .errors import BadPayload

Box = tuple[float, float, float, float]


def windows(side: float, stride: float) -> list[Box]:
    """Square-in-fractions windows of `side`, every `stride`, row by row, covering [0, 1]²."""
    steps = round((1.0 - side) / stride) + 1
    starts = [round(i * stride, 6) for i in range(steps)]
    return [(left, top, round(left + side, 6), round(top + side, 6)) for top in starts for left in starts]


SCHEMES: dict[str, list[Box]] = {
    "none": [],
    "grid2": windows(1 / 2, 1 / 2),
    "win2": windows(1 / 2, 1 / 4),
    "win2+3": windows(1 / 2, 1 / 4) + windows(3 / 4, 1 / 4),
    "grid3": windows(1 / 3, 1 / 3),
}


def boxes(scheme: str) -> list[Box]:
    """The boxes of `scheme`; an unknown name is the caller's error (400)."""
    if scheme not in SCHEMES:
        raise BadPayload(f"regions must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    return SCHEMES[scheme]


def crops(img: Image.Image, scheme: str, short_side: int | None = None) -> list[Image.Image]:
    """The region images of `img` under `scheme`, in the scheme's order (the whole image not included).

    With `short_side` (the size the model's resize brings a region's short side to), the regions
    are cut from one copy of `img` reduced by the largest whole factor that keeps every region's
    short side at or above it: one pass over the full image instead of one per region (what that
    saves, and how close the vectors stay: docs/relevance.md), and the model's antialiased resize
    still does the last step.
    """
    found = boxes(scheme)
    if not found:
        return []
    if short_side:
        narrowest = min(min(right - left, bottom - top) for left, top, right, bottom in found)
        factor = int(min(img.size) * narrowest // short_side)
        if factor >= 2:
            img = img.reduce(factor)
    width, height = img.size
    out = []
    for left, top, right, bottom in found:
        x0, y0 = round(left * width), round(top * height)
        out.append(img.crop((x0, y0, max(round(right * width), x0 + 1), max(round(bottom * height), y0 + 1))))
    return out
