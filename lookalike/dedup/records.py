"""The records de-duplication works with: an image verified against a keeper, and a keeper with its
members. They become JSON only in output.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from lookalike.index.documents import Doc
from lookalike.verify.verdict import Verdict


@dataclass(frozen=True)
class Member:
    """An image verified against a keeper: its cosine to the keeper, and the verdict (where it lies
    in the keeper: `verdict.box`)."""

    doc: Doc
    cosine: float
    verdict: Verdict


@dataclass
class Group:
    """A kept image and the images verified as its copies or parts."""

    keep: Doc
    members: list[Member] = field(default_factory=list)
