"""Retrieval metrics from exact cosine similarities (the embedding is measured, not the index).

For each query, the gallery is ranked by cosine; `relevant[q, g]` says which gallery items count
as a right answer. recall@k: the share of queries with a right answer in their top k. AP@k: the
mean over the ranks i <= k holding a right answer of precision@i, divided by min(k, number of
right answers); mAP@k is its mean over queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KS = (1, 5, 10)


@dataclass(frozen=True)
class Scores:
    recall: dict[int, float]  # k -> recall@k
    map_at_10: float
    queries: int

    def row(self) -> dict:
        return {**{f"recall@{k}": round(v, 4) for k, v in self.recall.items()}, "mAP@10": round(self.map_at_10, 4),
                "queries": self.queries}  # fmt: skip


def rankings(queries: np.ndarray, gallery: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Gallery indices by decreasing cosine for each query (L2-normalised rows); `exclude[q, g]`
    True drops g from q's ranking (a query held out of its own gallery)."""
    return ranked_by(queries @ gallery.T, exclude)


def ranked_by(similarity: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Gallery indices by decreasing `similarity` [Q, G] for each query."""
    if exclude is not None:
        similarity = np.where(exclude, -np.inf, similarity)
    return np.argsort(-similarity, axis=1, kind="stable")


def per_query(ranked: np.ndarray, relevant: np.ndarray, k_max: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(hits [Q, k_max] booleans of the top k_max, AP@k_max [Q])."""
    top = ranked[:, :k_max]
    hits = np.take_along_axis(relevant, top, axis=1)
    precision = np.cumsum(hits, axis=1) / np.arange(1, top.shape[1] + 1)
    wanted = np.minimum(relevant.sum(axis=1), top.shape[1])
    ap = np.where(wanted > 0, (precision * hits).sum(axis=1) / np.maximum(wanted, 1), 0.0)
    return hits, ap


def score(ranked: np.ndarray, relevant: np.ndarray, mask: np.ndarray | None = None) -> Scores:
    """Scores over the queries selected by `mask` (all by default)."""
    hits, ap = per_query(ranked, relevant)
    if mask is not None:
        hits, ap = hits[mask], ap[mask]
    recall = {k: float(hits[:, :k].any(axis=1).mean()) if len(hits) else 0.0 for k in KS}
    return Scores(recall, float(ap.mean()) if len(ap) else 0.0, len(ap))
