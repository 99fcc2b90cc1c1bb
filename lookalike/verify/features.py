"""Local features of one image: SIFT keypoints and descriptors on a frame of at most FRAME pixels a
side (a pale picture searched again at a lower contrast: PALE), and a gray picture of at most THUMB
a side for comparing aligned pixels.

SIFT is not mirror-invariant, but a mirrored image's descriptors are the original's with the
4 x 4 grid's rows reversed and each orientation bin b sent to -b, so one extraction serves both
orientations (how well: docs/constants.md).

Storage: ~ 136 B per keypoint (128 B descriptor, 8 B position) + the gray picture as PNG.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from PIL import Image, ImageOps

from lookalike.errors import UnsupportedMedia

FRAME = 512  # longest side features are found on (its cost: docs/constants.md)
THUMB = 256  # longest side of the gray picture kept for aligned comparison
MAX_KEYPOINTS = 600  # the strongest are kept
CONTRAST = 0.02  # SIFT's contrast threshold (OpenCV's default 0.04 finds almost nothing in pale interiors)
# A picture with fewer than PALE keypoints at CONTRAST (a pale room, a white wall, a soft gradient)
# is searched again at PALE_CONTRAST (both values chosen by measurement: docs/constants.md).
PALE = 150
PALE_CONTRAST = 0.005
_DECODING = threading.Lock()
_sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS, contrastThreshold=CONTRAST)  # type: ignore[attr-defined]
_pale_sift = cv2.SIFT_create(nfeatures=MAX_KEYPOINTS, contrastThreshold=PALE_CONTRAST)  # type: ignore[attr-defined]


@dataclass
class Features:
    width: int  # the image's own pixels
    height: int
    frame: tuple[int, int]  # (w, h) of the frame keypoints are in
    xy: np.ndarray  # float32 [N, 2], frame pixels
    desc: np.ndarray  # uint8 [N, 128]
    thumb: np.ndarray  # uint8 [h, w] gray, longest side THUMB

    @property
    def count(self) -> int:
        return len(self.xy)

    def mirrored(self) -> Features:
        """The features of the image flipped left to right, without extracting again (made once)."""
        return self._mirror

    @cached_property
    def _mirror(self) -> Features:
        grid = self.desc.reshape(-1, 4, 4, 8)[:, ::-1, :, :]
        desc = grid[:, :, :, (-np.arange(8)) % 8].reshape(-1, 128)
        xy = self.xy.copy()
        xy[:, 0] = self.frame[0] - xy[:, 0]
        return Features(self.width, self.height, self.frame, xy, np.ascontiguousarray(desc), self.thumb[:, ::-1].copy())

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, size=np.array([self.width, self.height, *self.frame], np.int32), xy=self.xy,
                            desc=self.desc, thumb=self.thumb)  # fmt: skip
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Features:
        # One at a time: np.load parses each array's header with ast.literal_eval, which CPython
        # 3.11 before 3.11.8 cannot run on two threads at once ("AST constructor recursion depth
        # mismatch", seen in a verified dedup reading features on its pool). ~1 ms per image.
        with _DECODING, np.load(io.BytesIO(data)) as saved:
            w, h, fw, fh = (int(v) for v in saved["size"])
            return cls(w, h, (fw, fh), saved["xy"], saved["desc"], saved["thumb"])


def gray(img: Image.Image, side: int) -> np.ndarray:
    """`img` upright, in gray, scaled to at most `side` pixels a side (never up)."""
    scale = min(1.0, side / max(img.size))
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return np.asarray(img.convert("L").resize(size, Image.Resampling.BILINEAR))


def drafted(img: Image.Image) -> Image.Image:
    """A JPEG set to decode in gray at the smallest DCT scale (1/2, 1/4, 1/8) that still gives twice
    FRAME on its longest side, so the resize to the frame still does the smoothing: a 12 MP phone
    photo decodes several times faster. Other formats are left as they are."""
    if img.format == "JPEG" and max(img.size) > 2 * FRAME:
        scale = 2 * FRAME / max(img.size)
        img.draft("L", (max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    return img


def extract(image: bytes | Image.Image) -> Features:
    """Features of an image (bytes or a PIL image). A flat image gets no keypoints, not an error;
    bytes that are not a readable image raise UnsupportedMedia with the reason."""
    try:
        img = image if isinstance(image, Image.Image) else drafted(Image.open(io.BytesIO(image)))
        img = ImageOps.exif_transpose(img)
        frame = gray(img, FRAME)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:  # UnidentifiedImageError is an OSError
        raise UnsupportedMedia(f"cannot read the image to verify it: {exc}") from exc
    keypoints, desc = _sift.detectAndCompute(frame, None)
    if len(keypoints) < PALE:
        keypoints, desc = _pale_sift.detectAndCompute(frame, None)
    xy = np.array([k.pt for k in keypoints], dtype=np.float32).reshape(-1, 2)
    desc = np.zeros((0, 128), np.uint8) if desc is None else np.clip(desc, 0, 255).astype(np.uint8)
    return Features(img.width, img.height, (frame.shape[1], frame.shape[0]), xy, desc, gray(img, THUMB))
