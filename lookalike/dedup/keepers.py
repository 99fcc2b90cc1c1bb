"""Which image of a group is kept: one rule for verified and cosine-only runs alike, and, once a
verified group is formed, the best copy of its picture (`best_copy`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lookalike.dedup.records import Member
from lookalike.index.documents import Doc

SAME_PIXELS = 0.05  # a copy with at least 95 % of the pixels the keeper gives the picture shows it as well


def area(doc: Doc) -> float:
    return float((doc.width or 0) * (doc.height or 0))


def largest_first(doc: Doc) -> tuple:
    """The keeper first: the most pixels, then the earliest ingested, then the smallest id."""
    return (-area(doc), doc.ingested_at or "", doc.id)


def earliest_first(doc: Doc) -> tuple:
    """The keeper first: the earliest ingested, then the most pixels, then the smallest id."""
    return (doc.ingested_at or "", -area(doc), doc.id)


# "best": the largest is judged first, then the best copy of its picture is kept (best_copy)
KEEPERS: dict[str, Callable[[Doc], tuple]] = {"best": largest_first, "earliest": earliest_first}


def best_copy(keep: Doc, members: Sequence[Member]) -> Doc:
    """The image a verified group should keep: the keeper, unless it is a copy of the picture with
    something added around it (a caption band, frame, border or app UI: a copy was verified to lie
    whole inside it with a plain surround, Verdict.framed) and that copy shows the picture with as
    many pixels (within SAME_PIXELS) as the keeper does; then the copy with the most pixels, the
    earliest ingested among equals. A meme is not kept over its photo; a meme of a larger version
    still is over a smaller clean copy (more of the picture's pixels)."""
    if not area(keep):
        return keep
    inside = [member.doc for member in members
              if member.verdict.is_copy and member.verdict.framed is not None and area(member.doc)
              and area(member.doc) >= (1 - SAME_PIXELS) * member.verdict.framed * area(keep)]  # fmt: skip
    if not inside:
        return keep
    most = max(area(doc) for doc in inside)
    return min((doc for doc in inside if area(doc) >= (1 - SAME_PIXELS) * most),
               key=lambda doc: (doc.ingested_at or "", doc.id))  # fmt: skip
