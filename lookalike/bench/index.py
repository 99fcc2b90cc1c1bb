"""Embedded index at scale: recall@10 against exact search, build and query speed.

Vectors are synthetic but embedding-like: a 64-d latent mixture of 500 clusters projected to
D dimensions plus noise, L2-normalised (image embeddings have a low intrinsic dimension;
i.i.d. Gaussian 2048-d vectors would be a worst case no real model produces). Queries are
perturbed copies of indexed vectors. Prints a table, writes JSON.

    lookalike bench index --n 100000 --dim 2048
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike import bench
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.settings import REPORTS_DIR


def dataset(n: int, d: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent_dim, clusters = 64, 500
    centres = rng.standard_normal((clusters, latent_dim))
    projection = rng.standard_normal((latent_dim, d)) / np.sqrt(latent_dim)
    xb = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 10000):
        m = min(10000, n - start)
        z = centres[rng.integers(0, clusters, m)] + 0.5 * rng.standard_normal((m, latent_dim))
        x = z @ projection + 0.05 * rng.standard_normal((m, d))
        xb[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    picks = rng.integers(0, n, nq)
    xq = xb[picks] + 0.02 * rng.standard_normal((nq, d)).astype(np.float32)
    return xb, (xq / np.linalg.norm(xq, axis=1, keepdims=True)).astype(np.float32)


def measure(index, xq: np.ndarray, truth: np.ndarray, category: str | None = None, k: int = 10) -> dict:
    """recall@k of `index` against the exact `truth` ids, and its query latency p50/p95 (ms)."""
    latencies, recalls = [], []
    for query, want in zip(xq, truth, strict=True):
        t0 = time.perf_counter()
        hits = index.search(query, k, category=category)
        latencies.append((time.perf_counter() - t0) * 1000)
        recalls.append(len({int(hit.id) for hit in hits} & set(want.tolist())) / k)
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"recall_at_10": float(np.mean(recalls)), "p50_ms": float(p50), "p95_ms": float(p95)}


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", default="100,200", help="comma-separated efSearch values to measure")
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_index.json")
    args = parser.parse_args(argv)

    xb, xq = dataset(args.n, args.dim, args.queries)
    k = 10
    t0 = time.perf_counter()
    truth = np.argsort(-(xq @ xb.T), axis=1)[:, :k]
    exact_ms = (time.perf_counter() - t0) / len(xq) * 1000
    rows = []
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-index-") as tmp:
        index = EmbeddedIndex(Path(tmp), "bench", "synthetic", args.dim, args.m, args.ef_construction)
        t0 = time.perf_counter()
        for start in range(0, args.n, 5000):
            docs = [Doc(id=str(start + i), vector=v, model="synthetic") for i, v in enumerate(xb[start : start + 5000])]
            index.upsert(docs)
        write_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.search(xq[0], k)  # builds the HNSW graph from SQLite
        build_s = time.perf_counter() - t0
        for ef in [int(e) for e in args.ef_search.split(",")]:
            index.ef_search = ef
            rows.append({"ef_search": ef, **measure(index, xq, truth, k=k)})
        index.close()
    print(f"{args.n} vectors x {args.dim}-d; M={args.m}, efConstruction={args.ef_construction}")
    print(f"write to SQLite {write_s:.1f} s ({args.n / write_s:.0f}/s); HNSW build {build_s:.1f} s; "
          f"exact search {exact_ms:.1f} ms/query (numpy, in memory)")  # fmt: skip
    print(f"{'efSearch':>8}  {'recall@10':>9}  {'p50 ms':>7}  {'p95 ms':>7}")
    for row in rows:
        print(f"{row['ef_search']:>8}  {row['recall_at_10']:>9.4f}  {row['p50_ms']:>7.2f}  {row['p95_ms']:>7.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"n": args.n, "dim": args.dim, "m": args.m, "ef_construction": args.ef_construction,
            "write_s": write_s, "build_s": build_s, "exact_ms_per_query": exact_ms}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"JSON: {args.out}")
    return 0
