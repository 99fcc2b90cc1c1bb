"""Search: a vector (from an image or an indexed id) -> hits; filters, per-category, thresholds.

The CLI (`lookalike search`, `lookalike similar`) and the API both call these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lookalike.errors import BadQuery, NotFound
from lookalike.index import VectorIndex
from lookalike.index.documents import Hit
from lookalike.serving.client import ModelClient
from lookalike.settings import Settings
from lookalike.timing import Stages
from lookalike.verify.features import Features
from lookalike.verify.rerank import rerank
from lookalike.verify.store import FeatureStore

PER_CATEGORY_MAX = 100  # hits per category


def by_vector(
    index: VectorIndex, vector: np.ndarray, k: int = 10, *, category: str | None = None, tags: Iterable[str] = (),
    exclude_ids: Iterable[str] = (), min_similarity: float | None = None, max_k: int = Settings.max_k,
) -> list[Hit]:  # fmt: skip
    """The `k` nearest of `vector` (float32 `[D]`, L2-normalised) that pass the filters."""
    if not 1 <= k <= max_k:
        raise BadQuery(f"k must be between 1 and {max_k}")
    if min_similarity is not None and not -1.0 <= min_similarity <= 1.0:
        raise BadQuery("min_similarity is a cosine: between -1 and 1")
    return index.search(vector, k, category=category, tags=list(tags), exclude_ids=list(exclude_ids),
                        min_similarity=min_similarity)  # fmt: skip


def verified(index: VectorIndex, store: FeatureStore, query: Features, vector: np.ndarray, k: int = 10, *,
             candidates: int = Settings.verify_candidates, stages: Stages | None = None,
             pool: ThreadPoolExecutor | None = None, **filters) -> list[Hit]:  # fmt: skip
    """The best `k` after verification: the nearest max(k, `candidates`) by cosine are each judged
    against the query's features (lookalike.verify; on `pool`'s threads when given), verified
    copies and parts first; when the nearest is a verified copy or part, those after the first k
    are not judged (verify.rerank). `stages` times the k-NN query (knn) and the judging (verify)
    apart."""
    stages = stages or Stages()
    with stages.timed("knn"):
        hits = by_vector(index, vector, max(k, candidates), **filters)
    with stages.timed("verify"):
        return rerank(hits, query, store, pool, k)[:k]


def by_image(index: VectorIndex, client: ModelClient, image: bytes, **filters) -> list[Hit]:
    """Embed `image` with the model server, then search."""
    return by_vector(index, client.embed(image), **filters)


def stored_vector(index: VectorIndex, doc_id: str) -> np.ndarray:
    """The vector of an indexed document; NotFound if there is none."""
    doc = index.get(doc_id)
    if doc is None:
        raise NotFound(f"no document with id {doc_id}")
    return doc.vector


def more_like_this(index: VectorIndex, doc_id: str, **filters) -> list[Hit]:
    """Look-alikes of an indexed document, excluding itself."""
    return by_vector(index, stored_vector(index, doc_id), exclude_ids=[doc_id], **filters)


def verified_like(index: VectorIndex, store: FeatureStore, doc_id: str, k: int = 10, **options) -> list[Hit]:
    """`more_like_this`, verified as `verified` does, against the document's own stored features
    (none to extract). A document whose features cannot be had is searched by cosine alone, each
    hit `unverified` with the reason."""
    doc = index.get(doc_id)
    if doc is None:
        raise NotFound(f"no document with id {doc_id}")
    query, why = store.get(doc_id, doc.source)
    if query is None:
        options = {key: value for key, value in options.items() if key not in ("candidates", "stages", "pool")}
        hits = by_vector(index, doc.vector, k, exclude_ids=[doc_id], **options)
        for hit in hits:
            hit.verdict = {"verdict": "unverified", "reason": f"the query image: {why}"}
        return hits
    return verified(index, store, query, doc.vector, k, exclude_ids=[doc_id], **options)


def per_category(index: VectorIndex, vector: np.ndarray, n: int = 3, exclude_ids: Iterable[str] = (), *,
                 max_categories: int = Settings.max_categories) -> dict:  # fmt: skip
    """The best `n` matches within each category: where a query sits among the classes. One k-NN
    query per category, so an index with more than `max_categories` categories is refused."""
    if not 1 <= n <= PER_CATEGORY_MAX:
        raise BadQuery(f"per_category must be between 1 and {PER_CATEGORY_MAX}")
    categories = index.categories()
    if len(categories) > max_categories:
        raise BadQuery(f"per_category searches each category, and this index has {len(categories)}; the limit is "
                       f"{max_categories} (LOOKALIKE_MAX_CATEGORIES). Search with ?category= instead")  # fmt: skip
    return {category: index.search(vector, n, category=category, exclude_ids=list(exclude_ids))
            for category in categories}  # fmt: skip


def format_table(hits: list[Hit]) -> str:
    if not hits:
        return "(no hits)"
    judged = any(hit.verdict for hit in hits)
    lines = [f"{'#':>3}  {'cosine':>7}  {'dist':>6}  " + (f"{'verdict':<11}" if judged else "")
             + f"{'category':<14} {'id':<14} source"]  # fmt: skip
    for rank, hit in enumerate(hits, start=1):
        meta = hit.metadata
        verdict = f"{(hit.verdict or {}).get('verdict', '-'):<11}" if judged else ""
        lines.append(f"{rank:>3}  {hit.similarity:>7.4f}  {hit.distance:>6.4f}  {verdict}"
                     f"{meta.get('category') or '-'!s:<14} {hit.id[:12]:<14} {meta.get('source') or ''}")  # fmt: skip
    return "\n".join(lines)
