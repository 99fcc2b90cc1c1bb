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
from collections.abc import Sequence
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
LAYERS = 3  # SIFT's layers an octave (OpenCV's default): a keypoint's response times this is its contrast
BLUR = 1.6  # SIFT's first blur (OpenCV's default sigma); the next layer's is BLUR * 2 ** (1 / LAYERS)
# Each pass builds SIFT's whole scale space, most of its cost; a frame that looks pale (PALE_LOOKING
# or less of its pixels change by more than half a gray level between SIFT's first two blurs) is
# searched once, at PALE_CONTRAST, keeping what the first pass would have found (`keypoints`).
PALE_LOOKING = 0.18
_DECODING = threading.Lock()
_sift = cv2.SIFT_create(MAX_KEYPOINTS, LAYERS, CONTRAST, sigma=BLUR)  # type: ignore[attr-defined]
_pale_sift = cv2.SIFT_create(MAX_KEYPOINTS, LAYERS, PALE_CONTRAST, sigma=BLUR)  # type: ignore[attr-defined]


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
    points, desc = keypoints(frame)
    xy = np.array([k.pt for k in points], dtype=np.float32).reshape(-1, 2)
    desc = np.zeros((0, 128), np.uint8) if desc is None else np.clip(desc, 0, 255).astype(np.uint8)
    return Features(img.width, img.height, (frame.shape[1], frame.shape[0]), xy, desc, gray(img, THUMB))


def keypoints(frame: np.ndarray) -> tuple[Sequence[cv2.KeyPoint], np.ndarray | None]:
    """SIFT's keypoints and descriptors on `frame` at CONTRAST; at PALE_CONTRAST where that finds
    fewer than PALE. A frame that looks pale is searched at PALE_CONTRAST first, and only once: the
    keypoints it finds with CONTRAST's response are the first pass's own (the threshold is the only
    difference between the passes), kept where there are PALE of them, with the same descriptors
    and in the first pass's order (sorted as OpenCV sorts them; past MAX_KEYPOINTS, OpenCV keeps
    the strongest in an order of its own, so the same keypoints can come in another order). Which
    way is taken changes the cost, never the keypoints (docs/constants.md, PALE_LOOKING)."""
    if not looks_pale(frame):
        points, desc = _sift.detectAndCompute(frame, None)
        if len(points) >= PALE:
            return points, desc
        return _pale_sift.detectAndCompute(frame, None)
    points, desc = _pale_sift.detectAndCompute(frame, None)
    contrast = np.array([point.response for point in points], np.float32) * np.float32(LAYERS)
    strong = np.flatnonzero(contrast.astype(np.float64) >= CONTRAST)  # OpenCV's own test, float by double
    if len(strong) < PALE:
        return points, desc
    if len(strong) < len(points):
        strong = np.array(sorted(strong, key=lambda at: sift_order(points[at])))
    return [points[at] for at in strong], desc[strong]


def sift_order(point: cv2.KeyPoint) -> tuple[float, ...]:
    """The order OpenCV's SIFT returns keypoints in when it keeps all it finds (left to right, top to
    bottom, then larger, then by angle, stronger, octave)."""
    return (point.pt[0], point.pt[1], -point.size, point.angle, -point.response, -point.octave)


def looks_pale(frame: np.ndarray) -> bool:
    """Whether SIFT at CONTRAST is likely to find fewer than PALE keypoints on `frame` (uint8 gray):
    at most PALE_LOOKING of its pixels differ by more than half a gray level between SIFT's first
    two blurs. ~2 ms; a wrong guess costs time, not keypoints (`keypoints`)."""
    pixels = frame.astype(np.float32)
    step = cv2.GaussianBlur(pixels, (0, 0), BLUR * 2 ** (1 / LAYERS)) - cv2.GaussianBlur(pixels, (0, 0), BLUR)
    return bool(np.count_nonzero(np.abs(step) > 0.5) <= PALE_LOOKING * step.size)
