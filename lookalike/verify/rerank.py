"""Search with verification: the index proposes candidates by cosine, the verifier judges each
against the query, and verified copies, then parts, come first (each group by cosine), then the
rest in cosine order. Each hit carries its verdict and, for a copy or a part, the box where the
query lies in it."""

from __future__ import annotations

from collections.abc import Sequence

from lookalike.index.documents import Hit
from lookalike.verify.features import Features
from lookalike.verify.store import FeatureStore
from lookalike.verify.verdict import verify

FIRST = {"copy": 0, "part": 1}  # verdicts ranked ahead of everything else, in this order


def order(verdicts: Sequence[str]) -> list[int]:
    """Positions of candidates already in cosine order, re-ranked: copies, then parts, then the rest,
    each group keeping its cosine order."""
    return sorted(range(len(verdicts)), key=lambda at: (FIRST.get(verdicts[at], len(FIRST)), at))


def rerank(hits: list[Hit], query: Features, store: FeatureStore) -> list[Hit]:
    """`hits` (in cosine order), each with its verdict, copies and parts first."""
    for hit in hits:
        features, why = store.get(hit.id, hit.metadata.get("source"))
        if features is None:
            hit.verdict = {"verdict": "unverified", "reason": why}
            continue
        judged = verify(query, features, cosine=hit.similarity)
        hit.verdict = {key: value for key, value in judged.to_dict().items() if key != "box"}
        if judged.verdict in FIRST:
            hit.box = judged.box
    return [hits[at] for at in order([(hit.verdict or {}).get("verdict", "") for hit in hits])]
