"""What a group says of its images, and the groups as JSON or CSV: the edge where records become text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lookalike.dedup.records import Group
from lookalike.index.documents import Doc


def described(doc: Doc) -> dict:
    """What a group says of one of its images."""
    return {"id": doc.id, "source": doc.source, "width": doc.width, "height": doc.height}


def groups_out(made: list[Group]) -> list[dict]:
    """Verified groups as `{keep, duplicates}`; a duplicate listed in several groups names the other
    keepers in `also_in`."""
    keepers_of: dict[str, list[str]] = {group.keep.id: [group.keep.id] for group in made}  # groups each image is in
    for group in made:
        for member in group.members:
            keepers_of.setdefault(member.doc.id, []).append(group.keep.id)
    return [{"keep": described(group.keep), "duplicates": [
        {**described(member.doc), "similarity": round(member.cosine, 6), "verdict": member.verdict.verdict,
         "reason": member.verdict.reason,
         **({"also_in": [k for k in keepers_of[member.doc.id] if k != group.keep.id]}
            if len(keepers_of[member.doc.id]) > 1 else {})}
        for member in group.members]} for group in made]  # fmt: skip


def stack_out(docs: list[Doc]) -> dict:
    """Other shots of one scene, kept beside the groups (a verified run's stacks)."""
    return {"images": [described(doc) for doc in docs], "verdict": "same_scene"}


def write(groups: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["group", "keep_id", "keep_source", "duplicate_id", "duplicate_source", "similarity",
                             "verdict"])  # fmt: skip
            for number, group in enumerate(groups, start=1):
                for dup in group["duplicates"]:
                    writer.writerow([number, group["keep"]["id"], group["keep"]["source"], dup["id"], dup["source"],
                                     dup["similarity"], dup.get("verdict", "")])  # fmt: skip
    else:
        out.write_text(json.dumps(groups, indent=2))
