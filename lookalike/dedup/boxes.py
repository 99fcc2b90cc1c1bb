"""Boxes in a keeper (left, top, right, bottom as fractions of it): where its images lie, and
whether one holds or lies within another."""

from __future__ import annotations

import numpy as np

from lookalike.dedup.records import Member

HOLDS = 0.8  # share of a keeper's area an image must cover to be listed in that keeper's group too


def holds(box: tuple | None, extent: tuple = (0.0, 0.0, 1.0, 1.0)) -> bool:
    """Whether an image whose outline in a keeper is `box` holds (HOLDS of) the keeper's picture,
    `extent` (a collage holds the photo pasted into it; a crop of another shot of the scene does not)."""
    return box is None or shares(box, extent, HOLDS * area(extent))


def content(members: list[Member]) -> tuple:
    """Where a keeper's picture lies in it: its copies' outlines, side by side median (a letterboxed
    keeper's photo, not its border; a tilted copy's corners reach past it), or all of it when none is
    a copy."""
    boxes = [member.verdict.box for member in members if member.verdict.is_copy and member.verdict.box is not None]
    if not boxes:
        return (0.0, 0.0, 1.0, 1.0)
    return tuple(float(side) for side in np.median(np.array(boxes), axis=0))


def within(inner: tuple | None, outer: tuple | None) -> bool:
    """Whether at least half of box `inner` lies in box `outer` (left, top, right, bottom fractions)."""
    return inner is None or outer is None or shares(inner, outer, 0.5 * area(inner))


def area(box: tuple) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def shares(a: tuple, b: tuple, least: float) -> bool:
    """Whether two boxes (left, top, right, bottom fractions) meet over an area of at least `least`."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width > 0 and height > 0 and width * height >= least
