"""People's decisions on duplicate groups, and how a group reads once they are applied.

Three decisions, each about a set of image ids:

    keep            `keep` is the one to keep; the others are its duplicates: the group is done
    not_duplicates  no two of `ids` are duplicates of each other: never grouped again
    resolved        the group as it stands is done (e.g. the site kept them all): never asked again

A decision about the same set of ids replaces the one before it (its key is the set). Decisions
are applied after every de-duplication run and whenever stored groups are read, so a run never
asks again about a group that was decided, and an image that joins a decided group
later brings the group back for review (the decision covers the ids it named, not the newcomer).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

KINDS = ("keep", "not_duplicates", "resolved")
PENDING = "pending"


def key_of(ids) -> str:
    """A stable key for a set of image ids (order does not matter)."""
    return hashlib.sha1("\n".join(sorted(set(ids))).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Decision:
    decision: str  # one of KINDS
    ids: tuple[str, ...]  # every image the decision is about (sorted, at least two)
    keep: str | None = None  # decision "keep": the one kept (one of ids)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(sorted(set(self.ids))))
        if self.decision not in KINDS:
            raise ValueError(f"decision must be one of {', '.join(KINDS)}, not {self.decision!r}")
        if len(self.ids) < 2:
            raise ValueError("a decision is about at least two images")
        if (self.decision == "keep") != (self.keep is not None):
            raise ValueError("`keep` names the kept image of a keep decision, and only of one")
        if self.keep is not None and self.keep not in self.ids:
            raise ValueError(f"the kept image {self.keep} is not one of ids")

    @property
    def key(self) -> str:
        return key_of(self.ids)

    def to_dict(self) -> dict:
        return {**asdict(self), "ids": list(self.ids)}

    @classmethod
    def from_dict(cls, data: dict) -> Decision:
        return cls(data["decision"], tuple(data["ids"]), data.get("keep"), data["at"])

    def separates(self, a: str, b: str) -> bool:
        """True when this decision says `a` and `b` are not duplicates."""
        return self.decision == "not_duplicates" and a in self.ids and b in self.ids


def members(group: dict) -> list[str]:
    return [group["keep"]["id"], *(dup["id"] for dup in group["duplicates"])]


def status(group: dict) -> str:
    return (group.get("decision") or {}).get("decision", PENDING)


def applied(group: dict, decision: Decision) -> dict | None:
    """`group` ({keep, duplicates, ...}) as `decision` leaves it; None when nothing of it is left."""
    ids = set(members(group))
    decided = set(decision.ids)
    if decision.decision == "not_duplicates":
        if group["keep"]["id"] not in decided:
            return group  # its duplicates were linked to its keeper, not to each other
        kept = [dup for dup in group["duplicates"] if dup["id"] not in decided]
        return {**group, "duplicates": kept} if kept else None
    if decision.decision == "keep" and decision.keep in ids and decision.keep != group["keep"]["id"]:
        group = rekept(group, decision.keep)
    if ids <= decided:
        return {**group, "decision": {"decision": decision.decision, "at": decision.at}}
    return group


def rekept(group: dict, new_keeper: str) -> dict:
    """`group` with `new_keeper` (one of its duplicates) kept; the old keeper becomes a duplicate
    (its similarity to the new one is the same cosine; the others keep theirs to the old keeper)."""
    chosen = next(dup for dup in group["duplicates"] if dup["id"] == new_keeper)
    old = {**group["keep"], "similarity": chosen.get("similarity"), "verdict": chosen.get("verdict", "copy"),
           "reason": "kept before the decision"}  # fmt: skip
    keeper = {key: chosen[key] for key in ("id", "source", "width", "height") if key in chosen}
    others = [dup for dup in group["duplicates"] if dup["id"] != new_keeper]
    return {**group, "keep": keeper, "duplicates": [old, *others]}


def apply_all(groups: list[dict], decisions: list[Decision]) -> list[dict]:
    """Every decision, oldest first, applied to every group it touches; each group gets its `key`."""
    ordered = sorted(decisions, key=lambda decision: decision.at)
    out = []
    for group in groups:
        current: dict | None = {key: value for key, value in group.items() if key != "decision"}
        for decision in ordered:
            if current is None:
                break
            if set(decision.ids) & set(members(current)):
                current = applied(current, decision)
        if current is not None:
            out.append({**current, "key": key_of(members(current))})
    return out


class Apart:
    """Answers "did someone say these two are not duplicates?" in O(decisions naming a)."""

    def __init__(self, decisions: list[Decision]) -> None:
        self.naming: dict[str, list[Decision]] = {}
        for decision in decisions:
            if decision.decision == "not_duplicates":
                for doc_id in decision.ids:
                    self.naming.setdefault(doc_id, []).append(decision)

    def __call__(self, a: str, b: str) -> bool:
        return any(decision.separates(a, b) for decision in self.naming.get(a, ()))
