"""De-duplication by cosine alone (`lookalike dedup --no-verify`): connected components of
"cosine >= threshold"; each group keeps the image `keep` (keepers.py) puts first - the earliest
ingested by default - the others listed with their cosine to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lookalike.dedup.keepers import KEEPERS, earliest_first
from lookalike.dedup.linked import Linked
from lookalike.dedup.output import described
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.progress import Progress
from lookalike.review.decisions import Apart, Decision, apply_all

DEFAULT_THRESHOLD = 0.85  # pair precision at this cut: docs/relevance.md


def find_groups(
    index: VectorIndex, threshold: float = DEFAULT_THRESHOLD, neighbours: int = 10, progress: bool = False,
    by_regions: bool = False, decisions: Sequence[Decision] = (), keep: str = "earliest",
) -> list[dict]:  # fmt: skip
    """Connected components of the "cosine >= threshold" graph over each doc's nearest neighbours
    (scored whole against whole; `by_regions`: against the other's best vector, as search scores).

    The index is streamed once; memory holds only the ids that have a duplicate (their union-find
    links), never the vectors of the whole index. Each group's documents are read back at the end."""
    index.refresh()  # every write acknowledged before the run takes part in it
    linked, apart = Linked(), Apart(list(decisions))
    with Progress("dedup", index.count(), unit="img", enabled=progress) as shown:
        for doc in index.scan():
            found = index.search(doc.vector, neighbours + 1, exclude_ids=[doc.id], min_similarity=threshold,
                                 by_regions=by_regions)  # fmt: skip
            for hit in found:
                if not apart(doc.id, hit.id):
                    linked.link(hit.id, doc.id)
            shown.update(1, linked=len(linked.parent))
    groups = [made for ids in linked.components() if (made := group(index, ids, KEEPERS[keep])) is not None]
    groups.sort(key=lambda made: -len(made["duplicates"]))
    return apply_all(groups, list(decisions))


def group(index: VectorIndex, ids: list[str], keeper_order: Callable[[Doc], tuple] = earliest_first) -> dict | None:
    """`{keep, duplicates}` for linked ids: the first by `keeper_order` is kept; None when fewer than
    two of them are still indexed."""
    docs = [doc for doc in (index.get(doc_id) for doc_id in ids) if doc is not None]
    if len(docs) < 2:
        return None
    docs.sort(key=keeper_order)
    keep = docs[0]
    duplicates = [{**described(doc), "similarity": round(float(np.dot(keep.vector, doc.vector)), 6)}
                  for doc in docs[1:]]  # fmt: skip
    return {"keep": described(keep), "duplicates": duplicates}
