"""OpenSearch at scale on the real node: the embedded benchmark's two vector sets (the mixture and the
hard Gaussian: `lookalike bench index --help`), queries and category filter, with float32 vectors
and with the Lucene engine's 7-bit scalar quantisation (`sq` encoder).

Per quantisation: bulk ingest, merge into one segment (Lucene searches one HNSW graph per
segment), recall@10 against exact search and search p50/p95 through the Python backend, the
node's resident memory, and the vector files of the merged segment by kind, read from the
node's data folder: .vec (float32 vectors), .veq (quantised vectors), .vex (the graph). What a
search touches (graph + the vectors it compares) must stay in the page cache; that set per
million vectors drives the sizing table printed at the end for 10M and 100M images.

    lookalike bench opensearch --n 200000 --dim 1280 --quantization none,sq8   # both vector sets
    lookalike bench opensearch --n 20000 --quantization none --nodes plain,secured,3.5   # TLS; 3.5 vs 2.19
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from lookalike import bench, opensearch_node
from lookalike.bench.backends import rss_mb
from lookalike.bench.index import CATEGORIES, VECTOR_SETS, Truth, measure, synthetic_docs, vector_sets
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import REPORTS_DIR, Settings

K = 10
NODE_KINDS = {"plain": (False, "2.19.1"), "secured": (True, "2.19.1"), "3.5": (False, "3.5.0")}  # (secure, version)
FILE_KINDS = {".vec": "float32 vectors", ".veq": "quantised vectors", ".vex": "HNSW graph"}
# The sizing table's assumptions, printed with it.
NODE_RAM_GB, NODE_HEAP_GB, SHARD_MAX_GB, REPLICAS = 64, 8, 40, 1


def vector_files(data_dir: Path, uuid: str) -> dict[str, int]:
    """Bytes per vector-file kind of one index's shards under a node's data folder."""
    sizes = dict.fromkeys(FILE_KINDS, 0)
    for path in data_dir.glob(f"nodes/*/indices/{uuid}/*/index/*"):
        if path.suffix in sizes:
            sizes[path.suffix] += path.stat().st_size
    return sizes


def load(index: OpenSearchIndex, n: int, d: int, truth: Truth | None, seed: int, vectors: str) -> float:
    started, done = time.perf_counter(), 0
    for chunk in synthetic_docs(n, d, seed, truth, vectors):
        for part in range(0, len(chunk), 1000):
            _, failures = index.upsert(chunk[part : part + 1000])
            if failures:
                raise RuntimeError(f"{len(failures)} writes failed, e.g. {failures[0]}")
        done += len(chunk)
        print(f"  {done:,}/{n:,} vectors ({done / (time.perf_counter() - started):.0f}/s)", flush=True)
    index.flush()
    return time.perf_counter() - started


def sizing(per_million: dict[str, dict]) -> list[dict]:
    """Shards, data nodes and memory for 10M and 100M images from the measured per-million figures."""
    rows = []
    for images in (10_000_000, 100_000_000):
        for kind, m in per_million.items():
            millions = images / 1e6
            hot_gb = m["hot_bytes"] * millions / 2**30 * (1 + REPLICAS)  # every copy is searched somewhere
            disk_gb = m["store_bytes"] * millions / 2**30
            shards = max(1, math.ceil(disk_gb / SHARD_MAX_GB))
            cache_gb = (NODE_RAM_GB - NODE_HEAP_GB) * 0.8  # the rest for the OS and merges
            nodes = max(2, math.ceil(hot_gb / cache_gb), math.ceil(shards * (1 + REPLICAS) / 8))
            rows.append({"images": images, "quantization": kind, "hot_set_gb": hot_gb, "primary_store_gb": disk_gb,
                         "shards": shards, "replicas": REPLICAS, "data_nodes": nodes, "node_ram_gb": NODE_RAM_GB,
                         "heap_gb": NODE_HEAP_GB})  # fmt: skip
    return rows


def client_settings(node) -> dict:
    """How to reach `node`: its URL, and on a secured node its `lookalike` user and CA (read as
    `lookalike opensearch env` prints them)."""
    if not node.config.secure:
        return {"opensearch_url": node.url}
    env = Settings.from_env(opensearch_node.security.client_environment(node.url, node.config.home))
    return {name: getattr(env, name) for name in ("opensearch_url", "opensearch_user", "opensearch_password",
                                                  "opensearch_ca_file")}  # fmt: skip


def run_one(node, kind: str, args, vectors: str, xq: np.ndarray, truth: Truth, first: bool) -> dict:
    """Ingest, merge and measure one quantisation of set `vectors` on `node` (`first`: the exact
    truth is filled as the vectors are drawn); the index is deleted after."""
    settings = Settings(**client_settings(node), alias=f"bench-{kind}-{os.getpid()}", engine="lucene",
                        quantization=kind, ef_search=args.ef_search)  # fmt: skip
    index = OpenSearchIndex(settings, "synthetic", args.dim)
    print(f"{kind}: ingesting {args.n:,} {vectors} vectors x {args.dim}-d ...", flush=True)
    ingest_s = load(index, args.n, args.dim, truth if first else None, seed=args.dim, vectors=vectors)
    merged = index.merge()
    row = {
        "vectors": vectors,
        "quantization": kind,
        "ingest_s": ingest_s,
        "merge_s": merged["seconds"],
        "ingest_per_s": args.n / ingest_s,
    }
    for query in xq[:10]:
        index.search(query, K)
    row |= measure(index, xq, truth.ids[0])
    names = [f"c{c}" for c in truth.cq]
    row |= {f"filtered_{key}": value for key, value in measure(index, xq, truth.ids[1], names).items()}
    uuid = index.client.indices.get_settings(index=index.name)[index.name]["settings"]["index"]["uuid"]
    files = vector_files(node.config.home / "data", uuid)
    store = index.client.indices.stats(index=index.name)["_all"]["primaries"]["store"]["size_in_bytes"]
    hot = files[".vex"] + (files[".veq"] if kind == "sq8" else files[".vec"])
    per_million = 1e6 / args.n
    row |= {"files_bytes": files, "store_bytes": store, "node_rss_mb": rss_mb(node.pid()),
            "hot_bytes_per_million": hot * per_million, "store_bytes_per_million": store * per_million}  # fmt: skip
    index.client.indices.delete(index=index.name)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--vectors", default="mixture,gaussian", help=f"comma-separated, of {', '.join(VECTOR_SETS)} "
                        "(lookalike bench index --help)")  # fmt: skip
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--quantization", default="none,sq8", help="comma-separated: none, sq8")
    parser.add_argument("--ef-search", type=int, default=Settings().ef_search)
    kinds = ", ".join(NODE_KINDS)
    parser.add_argument("--nodes", default="plain", help=f"comma-separated, each a node of its own: {kinds} "
                        "(secured: TLS + basic auth as the least-privilege user, what security costs; 3.5: "
                        "OpenSearch 3.5.0 on the same data)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_opensearch.json")
    args = parser.parse_args(argv)

    sets = vector_sets(args.vectors)
    queries = {name: VECTOR_SETS[name](args.dim, seed=args.dim, stream=1).draw(args.queries) for name in sets}
    truths = {name: Truth(xq, np.arange(args.queries) % CATEGORIES, K) for name, xq in queries.items()}
    results = []
    for place, kind_of_node in enumerate(args.nodes.split(",")):
        secure, version = NODE_KINDS[kind_of_node]
        with opensearch_node.throwaway_node("bench", secure=secure, version=version) as node:
            for name in sets:
                for number, kind in enumerate(args.quantization.split(",")):
                    first = place == 0 and number == 0  # the truth is filled once per set
                    row = run_one(node, kind, args, name, queries[name], truths[name], first)
                    results.append({**row, "node": kind_of_node})

    print(f"\n{args.n:,} vectors x {args.dim}-d on one node (Lucene engine, merged to one segment), k={K}, "
          f"ef_search={args.ef_search}; filter: 1 category of {CATEGORIES}")  # fmt: skip
    print(f"{'node':>7} {'vectors':>8} {'quant.':>6} {'ingest/s':>8} {'merge s':>8} {'recall@10':>9} {'p50 ms':>7} "
          f"{'p95 ms':>7} {'f.recall':>8} {'f.p50':>6} {'.vec MB':>8} {'.veq MB':>8} {'.vex MB':>8} {'hot GB/M':>9} "
          f"{'node RSS':>8}")  # fmt: skip
    for r in results:
        f = r["files_bytes"]
        print(f"{r['node']:>7} {r['vectors']:>8} {r['quantization']:>6} {r['ingest_per_s']:>8.0f} {r['merge_s']:>8.0f} "
              f"{r['recall_at_10']:>9.4f} "
              f"{r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['filtered_recall_at_10']:>8.4f} "
              f"{r['filtered_p50_ms']:>6.2f} "
              f"{f['.vec'] / 2**20:>8.0f} {f['.veq'] / 2**20:>8.0f} {f['.vex'] / 2**20:>8.0f} "
              f"{r['hot_bytes_per_million'] / 2**30:>9.2f} {r['node_rss_mb']:>8.0f}")  # fmt: skip
    table = sizing({r["quantization"]: {"hot_bytes": r["hot_bytes_per_million"],
                                        "store_bytes": r["store_bytes_per_million"]}
                    for r in results if r["node"] == results[0]["node"] and r["vectors"] == sets[0]})  # fmt: skip
    print(f"\nsizing ({args.dim}-d; {REPLICAS} replica, data nodes of {NODE_RAM_GB} GB RAM with a {NODE_HEAP_GB} GB "
          f"heap, 80 % of the rest as page cache for the hot set, shards ≤ {SHARD_MAX_GB} GB):")  # fmt: skip
    print(f"{'images':>12} {'quant.':>6} {'hot set GB':>10} {'primary GB':>10} {'shards':>6} {'data nodes':>10}")
    for s in table:
        print(f"{s['images']:>12,} {s['quantization']:>6} {s['hot_set_gb']:>10.0f} {s['primary_store_gb']:>10.0f} "
              f"{s['shards']:>6} {s['data_nodes']:>10}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": {k: str(v) for k, v in vars(args).items()}, "results": results,
                                    "sizing": table}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
