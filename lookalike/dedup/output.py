"""What a group says of its images, and the groups as JSON or CSV: the edge where records become text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from lookalike.index.documents import Doc


def described(doc: Doc) -> dict:
    """What a group says of one of its images."""
    return {"id": doc.id, "source": doc.source, "width": doc.width, "height": doc.height}


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
