"""OpenSearch: would a walk in the principal directions, re-scored on the full vector, beat the
full-length k-NN field? Measured on the real node before anything is adopted.

The embedded index walks a graph of projected vectors and re-ranks on the full ones
(lookalike.index.projection). On OpenSearch the same idea needs a second `knn_vector` field
(`walk`: each vector's coordinates along the top P principal directions of a sample, L2, Lucene
HNSW) beside the full one, and a `rescore` of the walk's top candidates by the k-NN scoring
script's exact cosine on the full field. The k-NN plugin builds no graph for a field only when
the whole index has `index.knn: false`, so the full field keeps its own HNSW graph: the reduced
walk adds a graph, it cannot replace one.

Per vector set, two indexes are loaded with the same vectors and merged into one segment:
`full` (today's mapping) and `reduced` (today's mapping plus `walk`). Measured: ingest rate,
merge time, vector files, the node's resident memory, and per efSearch the recall@10 against
exact search and p50/p95 of the full field's query and of the walk + rescore query.

    lookalike bench opensearch-reduced --n 200000 --vectors gaussian
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from lookalike import bench, opensearch_node
from lookalike.bench.backends import rss_mb
from lookalike.bench.index import CATEGORIES, CHUNK, VECTOR_SETS, Truth, vector_sets
from lookalike.bench.opensearch_scale import vector_files
from lookalike.index.opensearch_client import connect
from lookalike.index.opensearch_index import EF_CONSTRUCTION, M
from lookalike.index.projection import Projection
from lookalike.settings import REPORTS_DIR, Settings

K = 10
FIT = 50_000  # vectors the principal directions are fitted on (the embedded index's FIT_SAMPLE)
WALK_M, WALK_EF_CONSTRUCTION = 32, 160  # the embedded reduced graph's build


def mapping(dim: int, walk: int) -> dict:
    """Today's vector field (Lucene, cosine), and with `walk` > 0 the reduced field beside it."""
    fields: dict = {
        "vector": {"type": "knn_vector", "dimension": dim, "space_type": "cosinesimil",
                   "method": {"name": "hnsw", "engine": "lucene",
                              "parameters": {"m": M, "ef_construction": EF_CONSTRUCTION}}},
        "category": {"type": "keyword"},
    }  # fmt: skip
    if walk:
        fields["walk"] = {"type": "knn_vector", "dimension": walk, "space_type": "l2",
                          "method": {"name": "hnsw", "engine": "lucene",
                                     "parameters": {"m": WALK_M, "ef_construction": WALK_EF_CONSTRUCTION}}}  # fmt: skip
    return {"settings": {"index": {"knn": True, "number_of_shards": 1, "number_of_replicas": 0}},
            "mappings": {"properties": fields}}  # fmt: skip


def full_query(vector: np.ndarray, ef: int) -> dict:
    knn = {"vector": vector.tolist(), "k": K, "method_parameters": {"ef_search": max(K, ef)}}
    return {"size": K, "_source": False, "query": {"knn": {"vector": knn}}}


def reduced_query(vector: np.ndarray, walk: np.ndarray, ef: int, depth: int) -> dict:
    """The walk proposes `depth` candidates; the k-NN scoring script ranks them by exact cosine."""
    knn = {"vector": walk.tolist(), "k": depth, "method_parameters": {"ef_search": max(depth, ef)}}
    exact = {"script_score": {"query": {"match_all": {}}, "script": {
        "source": "knn_score", "lang": "knn",
        "params": {"field": "vector", "query_value": vector.tolist(), "space_type": "cosinesimil"}}}}  # fmt: skip
    return {"size": K, "_source": False, "query": {"knn": {"walk": knn}},
            "rescore": {"window_size": depth, "query": {"rescore_query": exact, "query_weight": 0.0,
                                                        "rescore_query_weight": 1.0}}}  # fmt: skip


def load(client, name: str, chunks: list[np.ndarray], projection: Projection | None) -> float:
    started, done = time.perf_counter(), 0
    for xb in chunks:
        walk = projection.apply(xb) if projection is not None else None
        lines = []
        for i, vector in enumerate(xb):
            source = {"vector": vector.tolist(), "category": f"c{(done + i) % CATEGORIES}"}
            if walk is not None:
                source["walk"] = walk[i].tolist()
            lines += [json.dumps({"index": {"_index": name, "_id": str(done + i)}}), json.dumps(source)]
        for part in range(0, len(lines), 2000):
            response = client.bulk(body="\n".join(lines[part : part + 2000]) + "\n", request_timeout=600)
            if response["errors"]:
                raise RuntimeError(f"bulk into {name} failed: {next(i for i in response['items'] if 'error' in i)}")
        done += len(xb)
        print(f"  {name}: {done:,} vectors ({done / (time.perf_counter() - started):.0f}/s)", flush=True)
    client.indices.refresh(index=name, request_timeout=600)
    return time.perf_counter() - started


def measure(client, name: str, bodies: list[dict], truth: np.ndarray) -> dict:
    for body in bodies[:10]:  # warm the page cache and the JIT
        client.search(index=name, body=body)
    latencies, recalls = [], []
    for body, want in zip(bodies, truth, strict=True):
        t0 = time.perf_counter()
        response = client.search(index=name, body=body)
        latencies.append((time.perf_counter() - t0) * 1000)
        found = {int(hit["_id"]) for hit in response["hits"]["hits"]}
        recalls.append(len(found & set(want.tolist())) / K)
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"recall_at_10": float(np.mean(recalls)), "p50_ms": float(p50), "p95_ms": float(p95)}


def run_set(node, name: str, args, ef_searches: list[int]) -> dict:
    drawn = VECTOR_SETS[name](args.dim, seed=args.dim)
    xq = VECTOR_SETS[name](args.dim, seed=args.dim, stream=1).draw(args.queries)
    truth = Truth(xq, np.arange(args.queries) % CATEGORIES, K)
    chunks = []
    for start in range(0, args.n, CHUNK):
        xb = drawn.draw(min(CHUNK, args.n - start))
        truth.add(xb, start, (np.arange(start, start + len(xb)) % CATEGORIES).astype(np.int64))
        chunks.append(xb)
    fit_rows = np.concatenate(chunks)[:: max(1, -(-args.n // FIT))]
    projection = Projection.fit(fit_rows, args.walk, population=args.n)
    client = connect(Settings(opensearch_url=node.url, opensearch_timeout=600))
    report: dict = {"vectors": name, "projection_kept": projection.kept, "indexes": {}}
    for label, walk in (("full", 0), ("reduced", args.walk)):
        index = f"bench-{label}-{os.getpid()}"
        client.indices.create(index=index, body=mapping(args.dim, walk))
        ingest_s = load(client, index, chunks, projection if walk else None)
        started = time.perf_counter()
        client.indices.forcemerge(index=index, max_num_segments=1, request_timeout=6 * 3600)
        merge_s = time.perf_counter() - started
        uuid = client.indices.get_settings(index=index)[index]["settings"]["index"]["uuid"]
        rows = []
        for ef in ef_searches:
            row: dict = {"ef_search": ef, "full": measure(client, index, [full_query(q, ef) for q in xq], truth.ids[0])}
            if walk:
                walks = projection.apply(xq)
                for depth in args.depth:
                    bodies = [reduced_query(q, w, ef, depth * K) for q, w in zip(xq, walks, strict=True)]
                    row[f"reduced_x{depth}"] = measure(client, index, bodies, truth.ids[0])
            rows.append(row)
        files = vector_files(node.config.home / "data", uuid)
        report["indexes"][label] = {"ingest_s": ingest_s, "ingest_per_s": args.n / ingest_s, "merge_s": merge_s,
                                    "files_bytes": files, "node_rss_mb": rss_mb(node.pid()), "rows": rows}  # fmt: skip
        client.indices.delete(index=index)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--vectors", default="gaussian,mixture", help=f"comma-separated, of {', '.join(VECTOR_SETS)}")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--walk", type=int, default=128, help="principal directions of the reduced field")
    parser.add_argument("--depth", default="4", help="comma-separated: the walk proposes DEPTH x k for the rescore")
    parser.add_argument("--ef-search", default="100,256,512", help="comma-separated efSearch values")
    parser.add_argument("--heap", default="2g", help="the node's Java heap")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_opensearch_reduced.json")
    args = parser.parse_args(argv)
    args.depth = [int(d) for d in args.depth.split(",")]
    ef_searches = [int(e) for e in args.ef_search.split(",")]
    sets = vector_sets(args.vectors)
    reports = []
    with opensearch_node.throwaway_node("bench", heap=args.heap) as node:
        for name in sets:
            reports.append(run_set(node, name, args, ef_searches))

    print(f"\n{args.n:,} vectors x {args.dim}-d on one node (Lucene, one segment), k={K}; reduced: a {args.walk}-d "
          f"walk field (M {WALK_M}, efC {WALK_EF_CONSTRUCTION}) + rescore on the full field")  # fmt: skip
    print(f"{'vectors':>8} {'index':>8} {'ingest/s':>8} {'merge s':>7} {'.vec MB':>8} {'.vex MB':>8} {'RSS MB':>7}")
    for report in reports:
        for label, measured in report["indexes"].items():
            f = measured["files_bytes"]
            print(f"{report['vectors']:>8} {label:>8} {measured['ingest_per_s']:>8.0f} {measured['merge_s']:>7.0f} "
                  f"{f['.vec'] / 2**20:>8.0f} {f['.vex'] / 2**20:>8.0f} {measured['node_rss_mb']:>7.0f}")  # fmt: skip
    print(f"\n{'vectors':>8} {'efSearch':>8} {'query':>12} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7}")
    for report in reports:
        for row in report["indexes"]["reduced"]["rows"]:
            full = next(r for r in report["indexes"]["full"]["rows"] if r["ef_search"] == row["ef_search"])["full"]
            for label, measured in [("full field", full)] + [(key, value) for key, value in row.items()
                                                              if key.startswith("reduced")]:  # fmt: skip
                print(f"{report['vectors']:>8} {row['ef_search']:>8} {label:>12} {measured['recall_at_10']:>9.4f} "
                      f"{measured['p50_ms']:>7.2f} {measured['p95_ms']:>7.2f}")  # fmt: skip
    bench.write_report(args.out, args, results=reports)
    return 0
