"""The index measures its own recall, on its own data (`lookalike admin recall`).

Sample SAMPLE stored documents, perturb each vector a little (a query is never exactly a stored
image), and ask the index for its k nearest whole vectors, the document itself excluded, at each
efSearch; compare with the exact top-k over every stored float32 vector (one pass over the index,
all queries at once). Recall@k and search p50 per efSearch; `--target` picks the smallest efSearch
that reaches it, and the index records it (searches then use it).

    found = estimate(index, k=10)
    found.smallest(0.95) -> {"ef_search": 64, "recall": 0.962, "p50_ms": 0.41} or None
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import median

import numpy as np

from lookalike.progress import Progress

EF_VALUES = (16, 32, 64, 128, 256, 512, 1024)
SAMPLE = 200  # queries: recall is a mean over them (its standard error at 0.95 and k 10: ~0.005)
NOISE = 0.1  # a query is its document's vector plus Gaussian noise of this norm relative to it
BATCH = 4096  # stored vectors scored at once for the exact top-k


@dataclass
class Estimate:
    k: int
    rows: list[dict]  # {"ef_search", "recall", "p50_ms"} in efSearch order
    queries: list[tuple[str, np.ndarray]] = field(repr=False)  # (the document left out, the query)
    truth_seconds: float = 0.0
    at: str = ""

    def smallest(self, target: float) -> dict | None:
        """The row of the smallest efSearch whose recall reaches `target`, else None."""
        return next((row for row in self.rows if row["recall"] >= target), None)

    def best(self) -> dict:
        return max(self.rows, key=lambda row: (row["recall"], -row["ef_search"]))

    def summary(self, chosen: dict | None = None, target: float | None = None) -> dict:
        """What the index records and `admin info` shows."""
        return {"k": self.k, "sample": len(self.queries), "at": self.at, "target": target,
                "chosen": chosen, "rows": self.rows}  # fmt: skip


def sample_queries(index, sample: int, noise: float, seed: int) -> list[tuple[str, np.ndarray]]:
    """(id, perturbed unit vector) for `sample` documents drawn evenly at random (one pass)."""
    rng = np.random.default_rng(seed)
    kept: list[tuple[str, np.ndarray]] = []
    for seen, doc in enumerate(index.scan()):  # reservoir sampling: every document equally likely
        if len(kept) < sample:
            kept.append((doc.id, doc.vector))
        elif (slot := int(rng.integers(0, seen + 1))) < sample:
            kept[slot] = (doc.id, doc.vector)
    queries = []
    for doc_id, vector in kept:
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        jitter = rng.standard_normal(len(unit)).astype(np.float32)
        query = unit + noise * jitter / max(float(np.linalg.norm(jitter)), 1e-12)
        queries.append((doc_id, (query / np.linalg.norm(query)).astype(np.float32)))
    return queries


def exact_top(index, queries: list[tuple[str, np.ndarray]], k: int) -> list[list[str]]:
    """For each query, the ids of the k stored documents of highest cosine, its own left out: every
    stored float32 vector scored (one pass over the index)."""
    q = np.stack([vector for _, vector in queries])
    own = [doc_id for doc_id, _ in queries]
    best_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_ids = np.full((len(q), k), "", dtype=object)
    ids: list[str] = []
    vectors: list[np.ndarray] = []

    def merge() -> None:
        nonlocal best_scores, best_ids
        block = np.stack(vectors)
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        scores = q @ block.T
        names = np.array(ids, dtype=object)
        for row, doc_id in enumerate(own):
            scores[row, names == doc_id] = -np.inf
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, np.broadcast_to(names, scores.shape)], axis=1)
        top = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, top, axis=1)
        best_ids = np.take_along_axis(all_ids, top, axis=1)
        ids.clear()
        vectors.clear()

    for doc in index.scan():
        ids.append(doc.id)
        vectors.append(np.asarray(doc.vector, dtype=np.float32))
        if len(ids) == BATCH:
            merge()
    if ids:
        merge()
    return [[doc_id for doc_id in row if doc_id] for row in best_ids.tolist()]


def estimate(index, k: int = 10, sample: int = SAMPLE, ef_values: tuple[int, ...] = EF_VALUES,
             noise: float = NOISE, seed: int = 0, progress: bool = False) -> Estimate:  # fmt: skip
    """Recall@k and p50 per efSearch of `index` (an EmbeddedIndex or OpenSearchIndex) on its own data."""
    if index.count() <= k:
        raise ValueError(f"the index holds {index.count()} documents: recall@{k} needs more than {k}")
    queries = sample_queries(index, sample, noise, seed)
    started = time.perf_counter()
    truth = exact_top(index, queries, k)
    truth_seconds = time.perf_counter() - started
    rows = []
    with Progress("recall", len(ef_values) * len(queries), unit="q", enabled=progress) as shown:
        for ef in ef_values:
            found, times = 0, []
            for (doc_id, query), wanted in zip(queries, truth, strict=True):
                t0 = time.perf_counter()
                hits = index.search(query, k, exclude_ids=[doc_id], by_regions=False, ef_search=ef)
                times.append(1000 * (time.perf_counter() - t0))
                found += len({hit.id for hit in hits} & set(wanted))
                shown.update(1, ef_search=ef)
            rows.append({"ef_search": ef, "recall": round(found / (k * len(queries)), 4),
                         "p50_ms": round(median(times), 3)})  # fmt: skip
    return Estimate(k, rows, queries, truth_seconds, datetime.now(UTC).isoformat(timespec="seconds"))
