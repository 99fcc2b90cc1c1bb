"""Which image of a group is kept: one rule for verified and cosine-only runs alike, and, once a
verified group is formed, the best copy of its picture (`best_copy`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from lookalike.dedup.records import Member
from lookalike.index.documents import Doc
from lookalike.verify.features import Features

SAME_PIXELS = 0.05  # two copies showing the picture with pixel counts within 5 % show it equally
ADDED = 0.03  # a canvas with more than 3 % outside the shared picture has something added (a band, frame)
SHARPER = 0.10  # a copy sharper by more than 10 % (thumbnail Laplacian energy) is the better among equals


def largest_first(doc: Doc) -> tuple:
    """The keeper first: the most pixels, then the earliest ingested, then the smallest id."""
    return (-((doc.width or 0) * (doc.height or 0)), doc.ingested_at or "", doc.id)


def earliest_first(doc: Doc) -> tuple:
    """The keeper first: the earliest ingested, then the most pixels, then the smallest id."""
    return (doc.ingested_at or "", -((doc.width or 0) * (doc.height or 0)), doc.id)


# "best": the largest is judged first, then the best copy of its picture is kept (best_copy)
KEEPERS: dict[str, Callable[[Doc], tuple]] = {"best": largest_first, "earliest": earliest_first}


@dataclass(frozen=True)
class Shown:
    """How one image shows a group's picture."""

    doc: Doc
    pixels: float  # the shared picture's pixels in this image
    added: float  # the share of its canvas outside the shared picture (bands, frames, captions, overlays)
    sharpness: float  # Laplacian energy of its gray thumbnail (0 without features)


def area(doc: Doc) -> float:
    return float((doc.width or 0) * (doc.height or 0))


def shown(keep: Doc, member: Member) -> tuple[Shown, Shown] | None:
    """(the keeper's, the copy's) from the copy's verdict: where it lies in the keeper (box, fractions
    of the keeper) and its scale (the copy's pixels -> the keeper's). None when the verdict lacks them."""
    verdict = member.verdict
    if verdict.box is None or not verdict.transform or not area(keep) or not area(member.doc):
        return None
    left, top, right, bottom = verdict.box
    in_keep = max(0.0, right - left) * max(0.0, bottom - top) * area(keep)  # the shared picture, keeper pixels
    scale = float(verdict.transform.get("scale") or 0)
    if scale <= 0:
        return None
    in_copy = min(in_keep / scale**2, area(member.doc))
    return (Shown(keep, in_keep, 1 - in_keep / area(keep), 0.0),
            Shown(member.doc, in_copy, 1 - in_copy / area(member.doc), 0.0))  # fmt: skip


def sharpness(features: Features | None) -> float:
    """Mean squared Laplacian of the gray thumbnail: a blurred or re-compressed copy has less."""
    if features is None:
        return 0.0
    return float(np.mean(cv2.Laplacian(features.thumb.astype(np.float32), cv2.CV_32F) ** 2))


def best_copy(keep: Doc, members: Sequence[Member], features: Callable[[Doc], Features | None]) -> Doc:
    """The image a verified group should keep: of the keeper and its copies (not its parts), the one
    showing the most pixels of the picture they share (within SAME_PIXELS: equal); among equals the
    one with nothing added (at most ADDED of its canvas outside the picture), then the sharpest (by
    more than SHARPER), then the earliest ingested. `features(doc)`: an image's local features."""
    mine: Shown | None = None
    rivals: list[Shown] = []
    for member in members:
        if not member.verdict.is_copy:
            continue
        found = shown(keep, member)
        if found is None:
            continue
        of_keep, of_copy = found
        mine = of_keep if mine is None or of_keep.pixels > mine.pixels else mine
        rivals.append(of_copy)
    if mine is None:
        return keep
    most = max(entry.pixels for entry in (mine, *rivals))
    equal = [entry for entry in (mine, *rivals) if entry.pixels >= (1 - SAME_PIXELS) * most]
    clean = [entry for entry in equal if entry.added <= ADDED] or equal
    if len(clean) > 1:
        scored = [(sharpness(features(entry.doc)), entry) for entry in clean]
        sharpest = max(score for score, _ in scored)
        clean = [entry for score, entry in scored if score >= sharpest / (1 + SHARPER)]
    return min(clean, key=lambda entry: (entry.doc.ingested_at or "", entry.doc is not keep, entry.doc.id)).doc
