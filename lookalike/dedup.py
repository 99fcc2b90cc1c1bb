"""Near-duplicate groups over the whole index, above a cosine threshold -> JSON or CSV.

    lookalike dedup --threshold 0.85 --out duplicates.csv

Each group keeps its earliest-ingested document (ties: smallest id); the others are listed
as duplicates of it with their cosine to the kept one.

Two images are scored whole against whole, even in an index with region vectors: region scores
(an image's whole vector against the other's best region) found more of the crops and collages
but lowered pair precision far more (`lookalike eval --dedup`; docs/relevance.md), so they are
an option (`by_regions=True`), not the default. The default threshold, 0.85, kept pair precision
at 0.94 on that measurement (EfficientNet-Lite0); 0.95 found 5 % of the duplicates.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lookalike.index import VectorIndex
from lookalike.progress import Progress

DEFAULT_THRESHOLD = 0.85


def find_groups(
    index: VectorIndex, threshold: float = DEFAULT_THRESHOLD, neighbours: int = 10, progress: bool = False,
    by_regions: bool = False,
) -> list[dict]:  # fmt: skip
    """Connected components of the "cosine >= threshold" graph over each doc's nearest neighbours
    (scored whole against whole; `by_regions`: against the other's best vector, as search scores).

    The index is streamed once; memory holds only the ids that have a duplicate (their union-find
    links), never the vectors of the whole index. Each group's documents are read back at the end."""
    index.refresh()  # every write acknowledged before the run takes part in it
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    with Progress("dedup", index.count(), unit="img", enabled=progress) as shown:
        for doc in index.scan():
            found = index.search(doc.vector, neighbours + 1, exclude_ids=[doc.id], min_similarity=threshold,
                                 by_regions=by_regions)  # fmt: skip
            for hit in found:
                parent[root(hit.id)] = root(doc.id)
            shown.update(1, linked=len(parent))
    members: dict[str, list[str]] = {}
    for doc_id in list(parent):
        members.setdefault(root(doc_id), []).append(doc_id)
    groups = [made for ids in members.values() if len(ids) >= 2 and (made := group(index, ids)) is not None]
    groups.sort(key=lambda made: -len(made["duplicates"]))
    return groups


def group(index: VectorIndex, ids: list[str]) -> dict | None:
    """`{keep, duplicates}` for linked ids: the earliest ingested is kept (ties: smallest id); None
    when fewer than two of them are still indexed."""
    docs = [doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None]
    if len(docs) < 2:
        return None
    docs.sort(key=lambda doc: (doc.ingested_at or "", doc.id))
    keep = docs[0]
    duplicates = [{"id": doc.id, "source": doc.source, "similarity": round(float(np.dot(keep.vector, doc.vector)), 6)}
                  for doc in docs[1:]]  # fmt: skip
    return {"keep": {"id": keep.id, "source": keep.source}, "duplicates": duplicates}


def write(groups: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        with out.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["group", "keep_id", "keep_source", "duplicate_id", "duplicate_source", "similarity"])
            for number, group in enumerate(groups, start=1):
                for dup in group["duplicates"]:
                    writer.writerow([number, group["keep"]["id"], group["keep"]["source"], dup["id"], dup["source"],
                                     dup["similarity"]])  # fmt: skip
    else:
        out.write_text(json.dumps(groups, indent=2))
