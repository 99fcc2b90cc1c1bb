"""Which image of a group is kept: one rule for verified and cosine-only runs alike."""

from __future__ import annotations

from collections.abc import Callable

from lookalike.index.documents import Doc


def largest_first(doc: Doc) -> tuple:
    """The keeper first: the most pixels, then the earliest ingested, then the smallest id."""
    return (-((doc.width or 0) * (doc.height or 0)), doc.ingested_at or "", doc.id)


def earliest_first(doc: Doc) -> tuple:
    """The keeper first: the earliest ingested, then the most pixels, then the smallest id."""
    return (doc.ingested_at or "", -((doc.width or 0) * (doc.height or 0)), doc.id)


KEEPERS: dict[str, Callable[[Doc], tuple]] = {"largest": largest_first, "earliest": earliest_first}
