"""Duplicate groups over the whole index -> JSON or CSV.

    lookalike dedup --out duplicates.json            # verified (the default): groups, and stacks beside
    lookalike dedup --no-verify --threshold 0.85     # cosine only

Verified (`find_verified`, verified.py): each image's neighbours at cosine >= CANDIDATE_THRESHOLD,
and the images it shares the most visual words with (one more by the words the best of them
lacks: a collage's host fills its list), are judged by lookalike.verify
(candidates.py, judge.py); a group forms around the largest picture (pixels, then earliest
ingested) and keeps the best copy of it (keepers.best_copy: not a picture with a band, frame or
UI around it when a copy inside shows the picture as well), with every image verified as a
copy or a part of it - never an image linked only through others, but
for one hop through a sure copy (grouping.py, rules.py); images judged another shot of the same
scene (`same_scene`) are reported as stacks, apart from the groups. In an index with region
vectors the candidates are found by region scores too; verification keeps out the false pairs
they bring.

Cosine only (`find_groups`, cosine.py): connected components of "cosine >= threshold"; each group
keeps its earliest-ingested document. Two images are scored whole against whole, even in an index
with region vectors (`by_regions=True` turns region scores on).

`run` is the whole job, as `lookalike dedup` and the demo do it: decisions honoured, the run kept
for the review page, the groups written. What each rule and threshold measured: docs/relevance.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lookalike.dedup.boxes import content, holds
from lookalike.dedup.cosine import DEFAULT_THRESHOLD, find_groups
from lookalike.dedup.keepers import KEEPERS
from lookalike.dedup.output import write
from lookalike.dedup.rules import holds_another, holds_copy, other_shot, through_copy
from lookalike.dedup.verified import CANDIDATE_THRESHOLD, find_verified
from lookalike.index import VectorIndex
from lookalike.review.store import open_review
from lookalike.settings import Settings
from lookalike.verify.store import FeatureStore

__all__ = [
    "CANDIDATE_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "KEEPERS",
    "Found",
    "content",
    "find_groups",
    "find_verified",
    "holds",
    "holds_another",
    "holds_copy",
    "other_shot",
    "run",
    "save",
    "through_copy",
    "write",
]


@dataclass
class Found:
    """One de-duplication run: its groups, its same-scene stacks (verified runs) and its record."""

    groups: list[dict]
    stacks: list[dict] = field(default_factory=list)
    record: dict = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # verified: id -> why it has no features (not judged)


def run(index: VectorIndex, settings: Settings, *, verify: bool = True, threshold: float | None = None,
        neighbours: int = 10, keep: str | None = None, workers: int | None = None, by_words: bool = True,
        by_regions: bool = False, progress: bool = True) -> Found:  # fmt: skip
    """De-duplicate `index` as `lookalike dedup` does: earlier review decisions honoured, and the run
    kept for the review page (GET /duplicates). `keep` (KEEPERS): the best copy when verified,
    the earliest ingested by cosine alone, unless given. `by_regions` applies to cosine-only runs."""
    review = open_review(settings)
    started = time.perf_counter()
    try:
        decided = review.decisions()
        if not verify:
            threshold, keep = threshold or DEFAULT_THRESHOLD, keep or "earliest"
            found = Found(find_groups(index, threshold, neighbours, progress=progress, by_regions=by_regions,
                                      decisions=decided, keep=keep))  # fmt: skip
        else:
            threshold, keep = threshold or CANDIDATE_THRESHOLD, keep or "best"
            store, stats = FeatureStore.of(settings), dict[str, Any]()
            try:
                found = Found(*find_verified(index, store, threshold, neighbours, progress=progress, keep=keep,
                                             decisions=decided, workers=workers, by_words=by_words,
                                             stats=stats))  # fmt: skip
            finally:
                store.close()
            found.missing = stats["missing"]
        found.record = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "images": index.count(),
                        "verified": verify, "words": verify and by_words, "threshold": threshold,
                        "neighbours": neighbours, "keep": keep, "groups": len(found.groups),
                        "stacks": len(found.stacks), "without_features": len(found.missing),
                        "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        review.save_run(found.record, found.groups, found.stacks)  # for GET /duplicates and the review page
    finally:
        review.close()
    return found


def save(found: Found, out: Path) -> list[str]:
    """Write the groups to `out` (and a verified run's stacks beside it); the lines that say so."""
    write(found.groups, out)
    dupes = sum(len(group["duplicates"]) for group in found.groups)
    done = sum(1 for group in found.groups if group.get("decision"))
    how = "verified" if found.record.get("verified") else "by cosine alone"
    lines = [f"{len(found.groups)} groups ({done} decided before), {dupes} duplicates ({how}; candidates at cosine "
             f">= {found.record.get('threshold')}): {out}"]  # fmt: skip
    if found.record.get("verified"):
        beside = out.with_name(f"{out.stem}.stacks.json")
        beside.write_text(json.dumps(found.stacks, indent=2))
        lines.append(f"{len(found.stacks)} stacks of other shots of one scene: {beside}")
    if found.missing:
        named = ", ".join(f"{doc_id} ({why})" for doc_id, why in list(found.missing.items())[:5])
        more = f" and {len(found.missing) - 5} more" if len(found.missing) > 5 else ""
        lines.append(f"{len(found.missing)} images were not judged, having no features: {named}{more}")
    return lines
