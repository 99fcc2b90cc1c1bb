"""Search with verification: the index proposes candidates by cosine, the verifier judges each
against the query, and verified copies, then parts, come first (each group by cosine), then the
rest in cosine order. Each hit carries its verdict and, for a copy or a part, the box where the
query lies in it."""

from __future__ import annotations

from lookalike.index.documents import Hit
from lookalike.verify.features import Features
from lookalike.verify.store import FeatureStore
from lookalike.verify.verdict import verify

FIRST = {"copy": 0, "part": 1}  # verdicts ranked ahead of everything else, in this order


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
    return sorted(
        hits, key=lambda hit: (FIRST.get((hit.verdict or {}).get("verdict", ""), len(FIRST)), -hit.similarity)
    )
