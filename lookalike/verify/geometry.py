"""The geometry of a pair: which keypoints match, the similarity transform (rotation, uniform scale,
shift) most of them agree on, where one picture lies in the other, and how alike their pixels are
once aligned.

Copies are similarity transforms of their source: resized, cropped, framed, captioned, rotated
(a mirror is handled before, by matching the mirrored features). A 4-degree-of-freedom model fitted
with RANSAC is harder to satisfy by chance than a homography, which is part of telling copies from
other shots of a scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.verify.features import Features

RATIO = 0.75  # Lowe's ratio test
REPROJECTION = 5.0  # frame pixels a RANSAC inlier may be off by
SIGMA = 2.0  # thumbnail pixels: the neighbourhood of the local normalisation
FLAT = 4.0  # gray levels: a pixel whose neighbourhood varies less has no texture (JPEG noise on a flat colour: ~1)
MIN_COMMON = 400  # pixels (20 x 20) the pictures must share to be compared
DEGENERATE = 1e-3  # a fitted scale below this maps a to a point (fit)
MAX_BLUR = 16.0  # sigma bound: a wild transform must not ask for a blur kernel of gigabytes
SCREEN_EVERY = 4  # screens(): every 4th keypoint is matched first
SCREEN_MATCHES = 3  # ... and a pair whose screen finds fewer matches is not matched further
SCREEN_RIVAL = 0.5  # a mirror whose screen finds under half the matches of the other way round is not fitted
EDGE_BAND = 6  # continued(): thumbnail pixels inside the smaller picture's edge compared with its surround
MIN_BAND = 20  # ... pixels each side needs to be compared at all
MAX_KEYSTONE = 2.0  # angled(): a's outline scaled at most this much more in one corner than in another
MAX_SKEW = 2.0  # ... and stretched at most this much more one way than the other


@dataclass
class Fit:
    H: np.ndarray  # float64 [3, 3]: a's frame -> b's frame; a similarity, or a bounded homography (`perspective`)
    inliers: np.ndarray  # bool [n] over the matches
    xa: np.ndarray  # float32 [n, 2] matched keypoints in a's frame
    xb: np.ndarray  # float32 [n, 2] in b's frame
    centre: tuple[float, float] = (0.0, 0.0)  # a point of a's frame where `scale` is read (a homography's varies)

    @property
    def count(self) -> int:
        return int(self.inliers.sum())

    @property
    def perspective(self) -> bool:
        return bool(np.any(self.H[2, :2] != 0))

    @property
    def scale(self) -> float:
        """How much a's frame grows in b's (at `centre` under a homography)."""
        return float(np.sqrt(abs(np.linalg.det(jacobian(self.H, self.centre)))))

    @property
    def rotation(self) -> float:
        """Degrees, counter-clockwise in image coordinates (at `centre` under a homography)."""
        J = jacobian(self.H, self.centre)
        return float(np.degrees(np.arctan2(J[1, 0], J[0, 0])))


def jacobian(H: np.ndarray, at: tuple[float, float]) -> np.ndarray:
    """[2, 2]: how H maps a small step at point `at` (H's linear part where H is affine)."""
    x, y = at
    w = H[2, 0] * x + H[2, 1] * y + H[2, 2]
    u = (H[0, 0] * x + H[0, 1] * y + H[0, 2]) / w
    v = (H[1, 0] * x + H[1, 1] * y + H[1, 2]) / w
    rows = [[H[0, 0] - u * H[2, 0], H[0, 1] - u * H[2, 1]], [H[1, 0] - v * H[2, 0], H[1, 1] - v * H[2, 1]]]
    return np.array(rows) / w


@dataclass(frozen=True)
class Matches:
    """Ratio-tested matches, in a's keypoint order (RANSAC samples by position): a's keypoint, b's
    keypoint, and their descriptors' distance, as arrays (no Python object per match: matching
    holds the GIL only between numpy calls, and the judging threads run side by side)."""

    a: np.ndarray  # int64 [n]
    b: np.ndarray  # int64 [n]
    distance: np.ndarray  # float32 [n]

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def none(cls) -> Matches:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))

    def at(self, positions: np.ndarray) -> Matches:
        return Matches(self.a[positions], self.b[positions], self.distance[positions])


def columns(b: Features) -> np.ndarray:
    """float32 [129, m]: b's descriptors as the right side of `nearest`'s product, -2 y over |y|^2,
    so that [x, 1] times it is |x - y|^2 less |x|^2. Made once per pair (four times b's bytes: not
    kept with b's features, which a collection holds by the thousand)."""
    floats = b.desc.astype(np.float32)
    return np.vstack([-2 * floats.T, np.einsum("ij,ij->i", floats, floats)[None, :]])


def nearest(desc: np.ndarray, right: np.ndarray) -> Matches:
    """The ratio test for descriptors `desc` (uint8 [n, 128]) against b's (`columns(b)`); `a` counts
    in `desc`. Distances come from one matrix product (BLAS: ~3x OpenCV's brute-force matcher on
    these sizes; docs/relevance.md). Exact: SIFT's bytes make every partial sum an integer below
    2^24, which float32 holds, so ties and the ratio test come out as OpenCV's."""
    if len(desc) == 0 or right.shape[1] < 2:
        return Matches.none()
    floats = desc.astype(np.float32)
    squared = np.hstack([floats, np.ones((len(desc), 1), np.float32)]) @ right  # [n, m]
    rows = np.arange(len(desc))
    first = squared.argmin(axis=1)
    closest = squared[rows, first]
    squared[rows, first] = np.inf
    second = squared.min(axis=1)
    own = np.einsum("ij,ij->i", floats, floats)
    lengths = np.sqrt(np.maximum(closest + own, 0.0)), np.sqrt(np.maximum(second + own, 0.0))
    good = np.flatnonzero(lengths[0] < RATIO * lengths[1])
    return Matches(good, first[good], lengths[0][good])


def ratio_tested(a: Features, b: Features) -> Matches:
    """Each keypoint of a with its nearest of b, where that is clearly nearer than the second."""
    if a.count < 2 or b.count < 2:
        return Matches.none()
    return nearest(a.desc, columns(b))


def screens(ways: list[Features], b: Features, right: np.ndarray) -> list[Matches]:
    """For each of `ways` (a, and a mirrored), the ratio-tested matches of every SCREEN_EVERY-th
    keypoint (`a` counts in it), all ways in one product. A pair whose screen finds fewer than
    SCREEN_MATCHES has too little in common to be judged further (that keeps every copy and part:
    docs/constants.md), and costs a quarter of a match; most of a search's candidates are such
    pairs. `right`: columns(b)."""
    if b.count < 2 or min(seen.count for seen in ways) < 2:
        return [Matches.none() for _ in ways]
    picked = np.arange(0, ways[0].count, SCREEN_EVERY)
    both = nearest(np.vstack([seen.desc[picked] for seen in ways]), right)
    way = both.a // len(picked)
    return [Matches(picked[both.a[way == i] - i * len(picked)], both.b[way == i], both.distance[way == i])
            for i in range(len(ways))]  # fmt: skip


def completed(a: Features, right: np.ndarray, first: Matches) -> Matches:
    """`ratio_tested(a, b)` given its screen `first` (`right`: columns(b)): the ratio test of one
    keypoint depends only on b, so the screen's matches are part of the full set, not work lost."""
    rest = np.ones(a.count, bool)
    rest[::SCREEN_EVERY] = False
    at_rest = np.flatnonzero(rest)
    more = nearest(a.desc[at_rest], right)
    merged = Matches(np.concatenate([first.a, at_rest[more.a]]), np.concatenate([first.b, more.b]),
                     np.concatenate([first.distance, more.distance]))  # fmt: skip
    return merged.at(np.argsort(merged.a, kind="stable"))


def one_to_one(good: Matches) -> Matches:
    """`good` with each keypoint of b in one match at most, its closest (the first of equals), in the
    order each keypoint of b is first matched."""
    if len(good) == 0:
        return good
    position = np.arange(len(good))
    by_b = np.lexsort((position, good.b))  # grouped by b's keypoint, each group in match order
    starts = np.flatnonzero(np.r_[True, good.b[by_b][1:] != good.b[by_b][:-1]])
    closest = np.lexsort((position, good.distance, good.b))[starts]  # the same groups, closest first
    return good.at(closest[np.argsort(by_b[starts], kind="stable")])  # in the order of each group's first match


def located(a: Features, b: Features, good: Matches) -> tuple[np.ndarray, np.ndarray]:
    """The matches' positions: (xa [n, 2], xb [n, 2])."""
    return a.xy[good.a].reshape(-1, 2), b.xy[good.b].reshape(-1, 2)


def fit(a: Features, b: Features, good: Matches | None = None) -> Fit | None:
    """The similarity transform from a's frame to b's most matches agree on, or None; `good`: the
    ratio-tested matches when already found. A fit that shrinks a to a point (many of a's keypoints
    matched to a few of b's: seen on a 45 % crop of an interior, 61 matches onto 20 keypoints, scale
    4e-20, judged `different`) is fitted again with each keypoint of b matched once (the same
    matches, not matched again)."""
    good = ratio_tested(a, b) if good is None else good
    for attempt in (good, one_to_one(good)):
        xa, xb = located(a, b, attempt)
        if len(xa) < 3:
            return None
        M, mask = cv2.estimateAffinePartial2D(xa, xb, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION,
                                              maxIters=2000, confidence=0.995)  # fmt: skip
        if M is None or mask is None:
            return None
        found = Fit(np.vstack([M, [0, 0, 1]]), mask.ravel().astype(bool), xa, xb)
        if found.scale >= DEGENERATE:
            break
    return found


def angled(a: Features, b: Features, good: Matches, least: int = 8) -> Fit | None:
    """The homography from a's frame to b's most matches (each keypoint of b once) agree on, or None
    unless it is a view of a flat picture from an angle: a's outline stays a convex quadrilateral,
    no part of it is scaled more than MAX_KEYSTONE times another, and a square stays a
    parallelogram no longer than MAX_SKEW times its width. Two shots of a scene from two places are
    not one homography but where the scene is flat (a wall), and there the bounds and the aligned
    pixels keep them apart (docs/constants.md). `least`: fewer matches than this cannot make one
    worth having (none is fitted: RANSAC over mostly wrong matches is the slow part)."""
    xa, xb = located(a, b, one_to_one(good))
    if len(xa) < max(8, least):
        return None
    H, mask = cv2.findHomography(xa, xb, cv2.RANSAC, REPROJECTION, maxIters=2000, confidence=0.995)
    if H is None or mask is None or abs(H[2, 2]) < 1e-12:
        return None
    H = H / H[2, 2]
    quad = project(H, corners(a.frame))
    if not cv2.isContourConvex(quad.astype(np.float32).reshape(-1, 1, 2)):
        return None
    scales = [np.sqrt(abs(np.linalg.det(jacobian(H, tuple(point))))) for point in corners(a.frame)]
    centre = (a.frame[0] / 2, a.frame[1] / 2)
    stretch = np.linalg.svd(jacobian(H, centre), compute_uv=False)
    if min(scales) <= 0 or max(scales) / min(scales) > MAX_KEYSTONE or stretch[0] / stretch[1] > MAX_SKEW:
        return None
    return Fit(H, mask.ravel().astype(bool), xa, xb, centre)


def project(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` [n, 2] of a's frame in b's, through H [3, 3] (perspective divide included)."""
    mapped = points @ H[:2, :2].T + H[:2, 2]
    return mapped / (points @ H[2, :2] + H[2, 2])[:, None]


def corners(frame: tuple[int, int]) -> np.ndarray:
    w, h = frame
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def outlines(found: Fit, a_frame: tuple[int, int], b_frame: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(a's outline in b's frame, b's outline in a's frame) under the fitted transform."""
    a_in_b = project(found.H, corners(a_frame))
    b_in_a = project(np.linalg.inv(found.H), corners(b_frame))
    return a_in_b, b_in_a


def inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """bool [n]: which points lie inside (or on) a convex polygon, whichever way it winds."""
    if len(points) == 0:
        return np.zeros(0, bool)
    edges = np.roll(polygon, -1, axis=0) - polygon  # [k, 2]
    to_points = points[:, None, :] - polygon[None, :, :]  # [n, k, 2]
    cross = edges[None, :, 0] * to_points[..., 1] - edges[None, :, 1] * to_points[..., 0]  # [n, k]
    return np.all(cross >= -1e-6, axis=1) | np.all(cross <= 1e-6, axis=1)


def offset(found: Fit) -> float:
    """How far the agreeing keypoints sit from where the transform puts them: the median, in pixels
    of the finer of the two frames (a's when it shrinks into b). A copy is the same pixels
    resampled, so its keypoints land where the transform says (≤ 1.21 px over every kind of copy of
    the bundled photos); another shot of a scene from a step aside moves near and far things
    apart (parallax), and its keypoints agree only loosely (1.6-3.6 px; docs/constants.md)."""
    inliers = found.inliers
    if not inliers.any():
        return 0.0
    moved = project(found.H, found.xa[inliers].astype(np.float64)) - found.xb[inliers]
    return float(np.median(np.linalg.norm(moved, axis=1))) * max(1.0, 1.0 / max(found.scale, DEGENERATE))


def agreeing_share(a: Features, b: Features, found: Fit, a_in_b: np.ndarray, b_in_a: np.ndarray) -> float:
    """Of the keypoints each picture has where the two overlap, the share that agree on the transform
    (over the picture with fewer there). Two copies agree on much of what they share; two different
    photos that carry the same caption band, frame or app UI agree only on that overlay (the
    measured spread: docs/constants.md, OVERLAY_SHARE). `a_in_b`, `b_in_a`: each picture's outline
    in the other's frame (`outlines`)."""
    shared = min(int(inside(a.xy, b_in_a).sum()), int(inside(b.xy, a_in_b).sum()))
    return found.count / max(shared, 1)


def share_inside(f: Features, polygon: np.ndarray) -> float:
    """The fraction of `f`'s keypoints inside `polygon` (its own frame): how much of its content the
    region holds. A flat frame, caption band or UI around a photo has few keypoints; another photo
    around it has many."""
    return float(inside(f.xy, polygon).mean()) if f.count else 0.0


def box(polygon: np.ndarray, frame: tuple[int, int]) -> tuple[float, float, float, float]:
    """The polygon's bounding box clipped to the frame, as (left, top, right, bottom) fractions."""
    w, h = frame
    left, top = np.clip(polygon.min(axis=0), 0, [w, h])
    right, bottom = np.clip(polygon.max(axis=0), 0, [w, h])
    return (float(left / w), float(top / h), float(right / w), float(bottom / h))


def covered(polygon: np.ndarray, frame: tuple[int, int]) -> float:
    """The fraction of the frame the convex polygon covers."""
    w, h = frame
    area, _ = cv2.intersectConvexConvex(polygon.astype(np.float32), corners(frame))
    return float(max(area, 0.0) / (w * h))


def surround(f: Features, polygon: np.ndarray, within: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inside, outside): bool masks of f's gray picture, inside `polygon` (its frame) and outside
    it (only within `within` thumbnail pixels of it, when given), each short of the blurred seam
    between them."""
    scale = f.thumb.shape[1] / f.frame[0]
    region = np.zeros(f.thumb.shape, np.uint8)
    cv2.fillConvexPoly(region, np.round(polygon * scale).astype(np.int32), 1)
    outside = cv2.dilate(region, np.ones((7, 7), np.uint8)) == 0
    if within is not None:
        outside &= cv2.dilate(region, np.ones((2 * within + 1,) * 2, np.uint8)) > 0
    return cv2.erode(region, np.ones((3, 3), np.uint8)) > 0, outside


def levels(pixels: np.ndarray) -> np.ndarray:
    """float [64]: the share of `pixels` (uint8 gray) at each of 64 gray levels."""
    return np.bincount(pixels.astype(np.int64) * 64 // 256, minlength=64) / max(pixels.size, 1)


def plain_surround(f: Features, polygon: np.ndarray, within: int | None = None) -> float:
    """How plain `f`'s picture is outside `polygon` (its frame; only within `within` thumbnail
    pixels of it, when given): the share of those pixels that fall in its three most common of 64
    gray levels. A border, caption band or app UI is a few flat colours; another photo around it is
    not (docs/constants.md, PLAIN_SURROUND). 1.0 when nothing lies outside."""
    _, outside = surround(f, polygon, within)
    if outside.sum() < 0.05 * f.thumb.size:
        return 1.0
    return float(np.sort(levels(f.thumb[outside]))[::-1][:3].sum())


def continued(f: Features, polygon: np.ndarray) -> float:
    """How much of what lies outside `polygon` in f's picture has the gray levels of the picture just
    inside its edge (a band EDGE_BAND thumbnail pixels wide): the two histograms' intersection. A
    plain surround that is more of the same photo (the pale wall around a crop of it) continues it;
    a border, caption band or app UI meets the picture in other levels (docs/constants.md,
    CONTINUED). 0.0 when too little lies on either side to tell."""
    inside, outside = surround(f, polygon)
    band = inside & ~(cv2.erode(inside.astype(np.uint8), np.ones((2 * EDGE_BAND + 1,) * 2, np.uint8)) > 0)
    if band.sum() < MIN_BAND or outside.sum() < MIN_BAND:
        return 0.0
    return float(np.minimum(levels(f.thumb[band]), levels(f.thumb[outside])).sum())


def normalised(g: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(each pixel minus its neighbourhood's mean over the neighbourhood's spread, that spread): the
    first is texture, the same under brightness, contrast and colour edits; the second says where
    there is texture at all."""
    g = g.astype(np.float32)
    mean = cv2.GaussianBlur(g, (0, 0), sigma)
    d = g - mean
    spread = np.sqrt(cv2.GaussianBlur(d * d, (0, 0), sigma))
    return d / (spread + 2.0), spread


def aligned_correlation(a: Features, b: Features, found: Fit) -> tuple[float, float]:
    """(over the overlap, within the agreeing keypoints' hull): correlations of the locally
    normalised gray pictures aligned by `found`, a warped onto b or b onto a, whichever shrinks
    (never enlarges: an enlarged picture is blurred). -1..1.

    Over the overlap, only pixels where both have texture count: a plain border, an app bar or a
    caption band's paper says nothing about the picture, and two copies in different frames would
    otherwise be compared frame against photo (copy pairs of the bundled photos reaching 0.6 rose
    from 0.87 to 0.92, other shots of one scene unchanged). Within the hull: where the match is,
    so a photo compared across two different surrounds (a screenshot's UI against a caption band)
    is judged on the photo."""
    to_thumb_a = a.thumb.shape[1] / a.frame[0]
    to_thumb_b = b.thumb.shape[1] / b.frame[0]
    T = np.diag([to_thumb_b, to_thumb_b, 1]) @ found.H @ np.diag([1 / to_thumb_a, 1 / to_thumb_a, 1])  # a -> b thumb
    # SIFT's positions put a pixel's centre at +0.5, warpAffine at +0: shift in, transform, shift out
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    T = np.linalg.inv(half) @ T @ half
    centre = (found.centre[0] * to_thumb_a, found.centre[1] * to_thumb_a)
    scale = np.sqrt(abs(np.linalg.det(jacobian(T, centre))))
    if scale <= 1:
        src, dst, W, matched = a.thumb, b.thumb, T, found.xb[found.inliers] * to_thumb_b
    else:
        src, dst, W, matched = b.thumb, a.thumb, np.linalg.inv(T), found.xa[found.inliers] * to_thumb_a
    shrink = min(scale, 1 / scale)
    source: np.ndarray = src.astype(np.float32)
    if shrink < 0.9:  # blur before shrinking, as a resize would, so fine texture does not alias
        source = cv2.GaussianBlur(source, (0, 0), min(0.5 / shrink, MAX_BLUR))
    h, w = dst.shape
    if found.perspective:
        warped = cv2.warpPerspective(source, W, (w, h), flags=cv2.INTER_LINEAR)
        covered = cv2.warpPerspective(np.ones(src.shape, np.uint8), W, (w, h), flags=cv2.INTER_NEAREST)
    else:
        warped = cv2.warpAffine(source, W[:2], (w, h), flags=cv2.INTER_LINEAR)
        covered = cv2.warpAffine(np.ones(src.shape, np.uint8), W[:2], (w, h), flags=cv2.INTER_NEAREST)
    mask = cv2.erode(covered, np.ones((5, 5), np.uint8)) > 0
    if mask.sum() < MIN_COMMON:
        return 0.0, 0.0
    x, x_spread = normalised(np.where(mask, warped, warped[mask].mean()), SIGMA)
    y, y_spread = normalised(dst, SIGMA)
    hull = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(matched.astype(np.float32)).astype(np.int32), 1)
    within = mask & (cv2.dilate(hull, np.ones((9, 9), np.uint8)) > 0)
    textured = mask & (x_spread > FLAT) & (y_spread > FLAT)
    return correlation(x, y, textured), correlation(x, y, within)


def correlation(x: np.ndarray, y: np.ndarray, where: np.ndarray) -> float:
    """Correlation of two normalised pictures over the pixels `where` (0 when too few)."""
    if where.sum() < MIN_COMMON:
        return 0.0
    x, y = x[where], y[where]
    return float((x * y).mean() / (np.sqrt((x * x).mean() * (y * y).mean()) + 1e-9))
