"""The verdict on a pair of images, and the rules that reach it.

1. Too few keypoints in either (a flat or tiny picture): local features cannot judge; the cosine
   of the two embeddings decides by a stated rule (>= FLAT_COPY_COSINE: copy, else different).
2. Fewer than MIN_INLIERS matched keypoints agree on one similarity transform (or it scales by
   more than MAX_SCALE): different.
3. Fewer than OVERLAY_SHARE of the keypoints where the two overlap agree: what matched is an
   overlay both carry (the same caption band, frame or app UI around different photos): different.
4. The pictures, aligned by that transform, are compared pixel by pixel (local contrast, so
   colour edits and JPEG do not matter): below COPY_CORRELATION where both have texture, and
   below MATCHED_CORRELATION within the agreeing keypoints' hull (or below LEAST_CORRELATION
   overall), they are another shot of the same scene (another angle, another moment, a burst):
   same_scene. The second test passes a photo compared across two different surrounds (a
   screenshot's UI against a caption band). So are pictures whose agreeing keypoints sit more
   than MAX_OFFSET pixels (median, over PARALLAX_INLIERS or more) off the transform: a copy's
   land where it puts them, another shot from a step aside moves near and far things apart
   (parallax).
5. Otherwise one picture holds the other. Each covering at least COPY_COVER of the other (a
   resized, recoloured, mildly cropped, rotated or mirrored copy) - copy; else, when what surrounds
   the smaller one is plain (at least PLAIN_SURROUND in three gray levels: a frame, a caption band,
   an app UI) and meets it in other gray levels (less than CONTINUED in those along its edge: the
   plain rest of a pale photo continues a crop of it) - copy; else the smaller is only a part of
   the larger (a heavy crop, a photo pasted into another) - part.

Why each threshold has its value: docs/constants.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from lookalike.verify.features import Features
from lookalike.verify.geometry import (
    SCREEN_EVERY,
    SCREEN_MATCHES,
    SCREEN_RIVAL,
    Fit,
    Matches,
    agreeing_share,
    aligned_correlation,
    angled,
    box,
    columns,
    completed,
    continued,
    covered,
    fit,
    offset,
    outlines,
    plain_surround,
    screens,
)

MIN_KEYPOINTS = 25
MIN_INLIERS = 15
MIN_ANGLED_INLIERS = 30  # a homography (8 degrees of freedom) must have at least this many keypoints agree
ANGLED_CORRELATION = 0.7  # ... and a copy seen at an angle this aligned correlation (other shots of a scene: less)
MAX_SCALE = 16.0
OVERLAY_SHARE = 0.13  # fewer agreeing keypoints where they overlap: a shared overlay (geometry.agreeing_share)
COPY_CORRELATION = 0.6
MATCHED_CORRELATION = 0.9  # or this within the agreeing keypoints' hull, while at least LEAST_CORRELATION overall
LEAST_CORRELATION = 0.2
MAX_OFFSET = 1.4  # px: agreeing keypoints further off the transform than this (median) are parallax, not a copy
PARALLAX_INLIERS = 25  # ... measured only over at least this many (a median of fewer is too loose to tell)
COPY_COVER = 0.5  # each covers at least this much of the other: a copy (a mild crop at most)
FRAME_SLACK = 0.03  # a lies whole in b when b's outline covers all but this share of it
PLAIN_SURROUND = 0.6  # what surrounds the smaller one is this plain (geometry.plain_surround): a frame
NEAR = 16  # ... and so is what lies within this many thumbnail pixels of it (256 a side): a frame meets the picture
CONTINUED = 0.5  # ... unless this much of it is in the gray levels along the picture's edge: more of one photo
FLAT_COPY_COSINE = 0.95
Kind = Literal["copy", "part", "same_scene", "different"]
VERDICTS: tuple[Kind, ...] = get_args(Kind)


@dataclass
class Verdict:
    verdict: Kind
    reason: str
    inliers: int = 0
    correlation: float | None = None
    transform: dict | None = None  # a -> b: scale, rotation (degrees), mirrored
    box: tuple[float, float, float, float] | None = None  # where a lies in b: fractions of b (left, top, right, bottom)
    framed: float | None = None  # a copy lying whole in b, framed: the share of b a's outline covers (else None)

    @property
    def is_copy(self) -> bool:
        return self.verdict == "copy"

    @property
    def is_part(self) -> bool:
        return self.verdict == "part"

    @property
    def joins(self) -> bool:
        """A copy or a part: the two images belong in one group."""
        return self.verdict in ("copy", "part")

    @property
    def is_same_scene(self) -> bool:
        return self.verdict == "same_scene"

    def to_dict(self) -> dict:
        out: dict = {"verdict": self.verdict, "reason": self.reason, "inliers": self.inliers}
        if self.correlation is not None:
            out["correlation"] = round(self.correlation, 3)
        if self.transform is not None:
            out["transform"] = self.transform
        if self.box is not None:
            out["box"] = [round(x, 4) for x in self.box]
        return out


def verify(a: Features, b: Features, cosine: float | None = None) -> Verdict:
    """What `a` is to `b`: copy, part, same_scene or different, with the reason and the evidence.
    The pictures are aligned by a similarity transform (a copy resized, cropped, framed, rotated,
    mirrored); where that does not make them a copy or part, by a bounded homography (a copy seen at
    an angle: geometry.angled), which must then make it a copy whose aligned pixels correlate
    ANGLED_CORRELATION or more: two shots of one scene align where the scene is flat, and correlate
    less (docs/constants.md)."""
    if min(a.count, b.count) < MIN_KEYPOINTS:
        return flat(a, b, cosine)
    right = columns(b)  # b's side of every product below, made once
    seen_ways = [a, a.mirrored()]
    ways = list(zip((False, True), seen_ways, screens(seen_ways, b, right), strict=True))
    most = max(len(first) for *_, first in ways)
    if most < SCREEN_MATCHES:
        return Verdict("different", f"nothing in common: fewer than {SCREEN_MATCHES} of every {SCREEN_EVERY}th "
                       "keypoint match, either way round")  # fmt: skip
    tried: list[tuple[bool, Features, Matches]] = []  # (mirrored, seen, ratio-tested matches)
    best: tuple[bool, Fit, Features] | None = None
    for mirrored, seen, first in ways:
        if len(first) < max(SCREEN_MATCHES, SCREEN_RIVAL * most):
            continue
        good = completed(seen, right, first)
        tried.append((mirrored, seen, good))
        found = fit(seen, b, good)
        if found is not None and (best is None or found.count > best[1].count):
            best = (mirrored, found, seen)
    plain = fitted(a, b, *best) if best is not None and best[1].count >= MIN_INLIERS else None
    if plain is None or not plain.joins:
        mirrored, seen, good = max(tried, key=lambda way: len(way[2]))
        found = angled(seen, b, good, least=MIN_ANGLED_INLIERS)
        if found is not None and found.count >= MIN_ANGLED_INLIERS:
            view = fitted(a, b, mirrored, found, seen)
            if view.is_copy and (view.correlation or 0.0) >= ANGLED_CORRELATION:
                return view
    if plain is not None:
        return plain
    agree = 0 if best is None else best[1].count
    return Verdict("different", f"{agree} matched keypoints agree on one transform (fewer than {MIN_INLIERS})",
                   inliers=agree)  # fmt: skip


def fitted(a: Features, b: Features, mirrored: bool, found: Fit, seen: Features) -> Verdict:
    """The verdict of a pair aligned by `found` (`seen`: a, or a mirrored, as it was fitted)."""
    transform = {"scale": round(found.scale * b.width / b.frame[0] / (a.width / a.frame[0]), 4),
                 "rotation": round(found.rotation, 1), "mirrored": mirrored}  # fmt: skip
    if found.perspective:
        transform["angled"] = True
    seen_as = "seen at an angle, " if found.perspective else ""
    if not 1 / MAX_SCALE <= found.scale <= MAX_SCALE:
        return Verdict("different", f"the transform scales by {found.scale:.3g}: not a copy", found.count,
                       transform=transform)  # fmt: skip
    a_in_b, b_in_a = outlines(found, seen.frame, b.frame)
    share = agreeing_share(seen, b, found, a_in_b, b_in_a)
    if share < OVERLAY_SHARE:
        return Verdict("different", f"{found.count} keypoints agree, only {share:.0%} of those where the two overlap: "
                       "what matched is an overlay both carry (a caption band, frame or app UI), not the picture",
                       found.count, transform=transform)  # fmt: skip
    correlation, where_matched = aligned_correlation(seen, b, found)
    where = box(a_in_b, b.frame)

    of_b, of_a = covered(a_in_b, b.frame), covered(b_in_a, seen.frame)  # how much of each the other covers
    lies_whole = of_a >= 1 - FRAME_SLACK > of_b  # a lies whole in b, which has more around it

    def said(verdict: Kind, reason: str, framed: float | None = None) -> Verdict:
        return Verdict(verdict, reason, found.count, correlation, transform, where, framed)

    photo_matches = where_matched >= MATCHED_CORRELATION and correlation >= LEAST_CORRELATION
    if correlation < COPY_CORRELATION and not photo_matches:
        return said("same_scene", f"{found.count} keypoints agree, but the aligned pixels differ (correlation "
                                  f"{correlation:.2f} < {COPY_CORRELATION}): another shot of the scene")  # fmt: skip
    off = offset(found) if found.count >= PARALLAX_INLIERS else 0.0
    if off > MAX_OFFSET:
        return said("same_scene", f"{found.count} keypoints agree, but {off:.2f} px off the transform (median; a "
                                  f"copy's: <= {MAX_OFFSET}): parallax, another shot of the scene")  # fmt: skip
    if min(of_a, of_b) >= COPY_COVER:  # framed: what b has around a is plain, a border, band or UI (dedup.keepers)
        framed = of_b if lies_whole and framing(b, a_in_b)[1] is None else None
        return said("copy", f"the same picture, {seen_as}({found.count} keypoints, aligned pixels correlate "
                            f"{correlation:.2f}, each covers {min(of_a, of_b):.0%}+ of the other)", framed)  # fmt: skip
    outer, inner_outline, inner = (b, a_in_b, "the first") if of_b < of_a else (seen, b_in_a, "the second")
    plain, rest = framing(outer, inner_outline)
    if rest is None:
        return said("copy", f"the same picture in a frame, {seen_as}({found.count} keypoints, correlation "
                            f"{correlation:.2f}; three gray levels make {plain:.0%} of its surround: a border, band "
                            "or UI)", of_b if lies_whole else None)  # fmt: skip  # lying whole in b, b is the outer
    return said("part", f"{inner} is part of the other, {seen_as}({found.count} keypoints, correlation "
                        f"{correlation:.2f}; it covers {min(of_a, of_b):.0%} of it, and {rest})")  # fmt: skip


def framing(outer: Features, outline: np.ndarray) -> tuple[float, str | None]:
    """(how plain what surrounds `outline` in `outer` is, None when it is a frame - else why not). A
    frame - a border, caption band or app UI - is plain (PLAIN_SURROUND), plain where it meets the
    picture too (within NEAR thumbnail pixels: a crop of a photo letterboxed on a plain canvas has
    the photo's rest around it, and the canvas beyond), and meets it in other gray levels (the
    plain rest of a pale photo around a crop of it continues the crop's own: CONTINUED)."""
    plain = plain_surround(outer, outline)
    if plain < PLAIN_SURROUND:
        return plain, "the rest is a picture, not a frame"
    near = plain_surround(outer, outline, within=NEAR)
    if near < PLAIN_SURROUND:
        return plain, (f"what lies along its edge is a picture (three gray levels make {near:.0%} of it): the rest "
                       "of a photo, not a frame")  # fmt: skip
    same = continued(outer, outline)
    if same >= CONTINUED:
        return plain, (f"the plain rest continues it ({same:.0%} in the gray levels along its edge): the same "
                       "photo, not a frame")  # fmt: skip
    return plain, None


def flat(a: Features, b: Features, cosine: float | None) -> Verdict:
    few = min(a.count, b.count)
    if cosine is None:
        return Verdict("different", f"too few keypoints to verify ({few} < {MIN_KEYPOINTS}) and no cosine given")
    if cosine >= FLAT_COPY_COSINE:
        return Verdict("copy", f"too few keypoints to verify ({few}); cosine {cosine:.3f} >= {FLAT_COPY_COSINE}")
    return Verdict("different", f"too few keypoints to verify ({few}); cosine {cosine:.3f} < {FLAT_COPY_COSINE}")
