"""IVF-PQ with exact re-ranking, measured beside the HNSW graphs of `lookalike bench index`.

Not an index option: the alternative we measured before choosing HNSW over 8-bit codes. The
coarse quantiser (`nlist` lists) and the product quantiser (`m` bytes per vector) are trained
on the first 100,000 vectors of the benchmark's SQLite file, every vector is then added in
chunks, and each query takes the 100 best candidates by PQ distance from `nprobe` lists and
re-ranks them by exact cosine on the float32 vectors read back from SQLite, as the embedded
index does with its graph's candidates.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import faiss
import numpy as np

from lookalike.bench.rss import current_rss_mb, peak_rss_mb

TRAIN = 100_000
CANDIDATES = 100


def read(db: sqlite3.Connection, d: int, after: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    rows = db.execute("SELECT key, vector FROM docs WHERE key > ? ORDER BY key LIMIT ?", (after, limit)).fetchall()
    keys = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
    return keys, np.frombuffer(b"".join(row[1] for row in rows), dtype="<f4").reshape(len(rows), d)


def probe(db_file: str, d: int, xq: np.ndarray, truth: np.ndarray, nprobes: list[int], nlist: int, m: int) -> dict:
    """Build, then search; run in a fresh process so its peak RSS is the build's and the search's."""
    db = sqlite3.connect(db_file)
    started = time.perf_counter()
    index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    _, sample = read(db, d, 0, TRAIN)
    index.train(sample)
    del sample
    after = 0
    while True:
        keys, xb = read(db, d, after, 50_000)
        if not len(keys):
            break
        index.add_with_ids(xb, keys)
        after = int(keys[-1])
    build_s = time.perf_counter() - started
    rows = []
    for nprobe in nprobes:
        index.nprobe = nprobe
        latencies, recalls = [], []
        for query, want in zip(xq, truth, strict=True):
            t0 = time.perf_counter()
            _, found = index.search(query[None], CANDIDATES)
            candidates = [int(key) for key in found[0] if key >= 0]
            marks = ",".join("?" * len(candidates))
            vectors = db.execute(f"SELECT key, vector FROM docs WHERE key IN ({marks})", candidates).fetchall()
            scored = sorted(((float(np.frombuffer(v, dtype="<f4") @ query), key) for key, v in vectors), reverse=True)
            latencies.append((time.perf_counter() - t0) * 1000)
            ids = {key - 1 for _, key in scored[:10]}  # document id = row key - 1 in the benchmark
            recalls.append(len(ids & set(want.tolist())) / 10)
        p50, p95 = np.percentile(latencies, [50, 95])
        rows.append({"nprobe": nprobe, "recall_at_10": float(np.mean(recalls)), "p50_ms": float(p50),
                     "p95_ms": float(p95)})  # fmt: skip
    size_mb = faiss.serialize_index(index).nbytes / 2**20
    return {"quantization": f"ivf{nlist},pq{m}", "build_s": build_s, "index_mb": size_mb, "peak_rss_mb": peak_rss_mb(),
            "rss_mb": current_rss_mb(), "rows": rows, "db": str(Path(db_file).name)}  # fmt: skip
