"""The OpenSearch k-NN query of a search, and its hits.

Without region vectors: one `knn` query on `vector`, the filters (category, tags, the excluded
ids) inside it as k-NN's efficient filter. With them (a nested `regions` field of `{vector, box}`):
a `dis_max` of that query and a `nested` k-NN query on `regions.vector` (score_mode max), so an
image scores by its best vector and is one hit however many of its vectors match; `inner_hits`
names the best region, whose box the hit carries when the region won. Checked on the 2.19 node:
the Lucene engine answers nested k-NN with one hit per parent document.
"""

from __future__ import annotations

import numpy as np

from lookalike.index.documents import Hit, cosine_from_score

META_FIELDS = ("id", "source", "category", "tags", "width", "height", "model", "ingested_at")


def search_body(vector: np.ndarray, k: int, ef_search: int, filters: list[dict], exclude_ids: list[str],
                by_regions: bool) -> dict:  # fmt: skip
    """The _search body for the k nearest images to `vector` [D]."""
    vector = np.asarray(vector, dtype=np.float32)
    # ef_search: the HNSW candidate list per query; the Lucene engine explores max(k, ef_search)
    knn: dict = {"vector": vector, "k": k, "method_parameters": {"ef_search": max(k, ef_search)}}
    narrowing = {"bool": {"filter": filters, "must_not": [{"ids": {"values": exclude_ids}}]}}
    if filters or exclude_ids:
        knn["filter"] = narrowing
    query: dict = {"knn": {"vector": knn}}
    if by_regions:
        # Each image has several region vectors, so ask for more of them; the parent filters apply
        # outside the nested query (they name the image's fields, not the region's).
        nested_knn = {"vector": vector, "k": 4 * k, "method_parameters": {"ef_search": max(4 * k, ef_search)}}
        nested = {"nested": {"path": "regions", "score_mode": "max",
                             "query": {"knn": {"regions.vector": nested_knn}},
                             "inner_hits": {"size": 1, "_source": False, "fields": ["regions.box"]}}}  # fmt: skip
        query = {"dis_max": {"queries": [query, nested]}}
        if filters or exclude_ids:
            query = {"bool": {"must": [query], **narrowing["bool"]}}
    return {"size": k, "_source": {"includes": list(META_FIELDS)}, "query": query}


def hits_of(response: dict, min_similarity: float | None) -> list[Hit]:
    """The response's hits as Hit, scores as cosines, with the region box where a region won."""
    hits = []
    for hit in response["hits"]["hits"]:
        cos = cosine_from_score(hit["_score"])
        if min_similarity is not None and cos < min_similarity:
            continue
        box = None
        inner = hit.get("inner_hits", {}).get("regions", {}).get("hits", {}).get("hits", [])
        if inner and inner[0]["_score"] >= hit["_score"] - 1e-6:
            box = tuple(float(x) for x in inner[0]["fields"]["regions.box"])
        meta = {key: hit["_source"].get(key) for key in META_FIELDS}
        hits.append(Hit(hit["_id"], cos, meta, box))  # type: ignore[arg-type]
    return hits
