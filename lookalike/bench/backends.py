"""Embedded index vs OpenSearch, side by side in one run: the same vectors, queries and k.

For each dimension: bulk ingest (vectors/s, until searchable), recall@10 against exact search
and search p50/p95 (k = 10, with and without a category filter, through each backend's Python
interface, so OpenSearch pays its HTTP + JSON), resident memory of each (this process for the
embedded index; the node's JVM for OpenSearch), and search-by-image p50 through the API with
real TorchServe (1280-d, EfficientNet-Lite0) in front of each backend. OpenSearch is measured
twice: as ingested (Lucene has one HNSW graph per segment, and a bulk load leaves many), and
after `lookalike admin merge` (one segment; its time counted into that row's ingest rate).

Vectors are the embedding-like synthetic set of `lookalike bench index`; each carries one of
ten categories at random, so a category filter keeps ~10 %. OpenSearch is the node at
--opensearch-url, else one this run starts (installed from Maven Central on first use).

    lookalike bench backends --n 100000 --dims 1280,2048
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil

from lookalike import bench, opensearch_node, ports, stack
from lookalike.api import process
from lookalike.bench.index import dataset, measure
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.index.embedded import EF_CONSTRUCTION, EmbeddedIndex, M
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.photos import subject_photos
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, RUN_DIR, Settings

K = 10
CATEGORIES = 10


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def fill(index: VectorIndex, xb: np.ndarray, cats: np.ndarray, model: str, batch: int = 1000) -> float:
    """Bulk-write every vector, then make it searchable; seconds taken."""
    t0 = time.perf_counter()
    for start in range(0, len(xb), batch):
        docs = [Doc(id=str(start + i), vector=v, model=model, category=f"c{cats[start + i]}")
                for i, v in enumerate(xb[start : start + batch])]  # fmt: skip
        _, failures = index.upsert(docs)
        if failures:
            raise RuntimeError(f"{len(failures)} writes failed, e.g. {failures[0]}")
    index.flush()
    index.search(xb[0], K)  # the embedded index builds its graph on first search
    return time.perf_counter() - t0


def api_p50(settings: Settings, requests: int) -> float:
    photo = subject_photos()["coffee"]
    with process.ApiThread(settings) as api, httpx.Client(timeout=60) as http:
        times = []
        for _ in range(requests + 3):
            t0 = time.perf_counter()
            response = http.post(f"{api.url}/search?k={K}", content=photo, headers={"Content-Type": "image/jpeg"})
            times.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
    return float(np.median(times[3:]))


@dataclass
class Workload:
    """The queries of one dimension, their exact answers (all, and within category c3), and the
    model server to search by image through, if any."""

    xq: np.ndarray
    truth: np.ndarray
    truth_c3: np.ndarray
    ts_url: str | None
    api_requests: int

    def observe(self, index: VectorIndex, settings: Settings, pid: int, rss_before: float) -> dict:
        row = measure(index, self.xq, self.truth, None)
        row |= {f"filtered_{key}": value for key, value in measure(index, self.xq, self.truth_c3, "c3").items()}
        row["rss_mb"] = rss_mb(pid) if pid else float("nan")
        row["rss_growth_mb"] = row["rss_mb"] - rss_before
        if self.ts_url and self.api_requests and index.dimension == 1280:
            row["api_search_by_image_p50_ms"] = api_p50(settings.replace(ts_url=self.ts_url), self.api_requests)
        return row


def run_dimension(dim: int, args, os_url: str, os_pid: int | None, ts_url: str | None, tmp: Path) -> list[dict]:
    xb, xq = dataset(args.n, dim, args.queries, seed=dim)
    cats = np.random.default_rng(dim + 1).integers(0, CATEGORIES, args.n)
    in_c3 = np.flatnonzero(cats == 3)
    work = Workload(xq, np.argsort(-(xq @ xb.T), axis=1)[:, :K], in_c3[np.argsort(-(xq @ xb[in_c3].T), axis=1)[:, :K]],
                    ts_url, args.api_requests)  # fmt: skip
    model = DEFAULT_MODEL if dim == 1280 else f"synthetic-{dim}"  # 1280-d: what TorchServe serves, for the API
    common = {"model": model, "alias": f"bench-{dim}-{os.getpid()}", "ef_search": args.ef_search, "m": args.m,
              "ef_construction": args.ef_construction}  # fmt: skip
    rows = []

    settings = Settings(data_dir=tmp / f"embedded-{dim}", **common)
    before = rss_mb(os.getpid())
    embedded = EmbeddedIndex(settings.data_dir, settings.alias, model, dim, settings.m or M,
                             settings.ef_construction or EF_CONSTRUCTION, settings.ef_search)  # fmt: skip
    seconds = fill(embedded, xb, cats, model)
    rows.append({"backend": "embedded", "dim": dim, "n": args.n, "ingest_per_s": args.n / seconds}
                | work.observe(embedded, settings, os.getpid(), before))  # fmt: skip
    embedded.close()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    print(f"  embedded   {dim}-d done", flush=True)

    settings = Settings(opensearch_url=os_url, **common)
    before = rss_mb(os_pid) if os_pid else float("nan")
    index = OpenSearchIndex(settings, model, dim)
    seconds = fill(index, xb, cats, model)
    row = {"backend": "opensearch", "dim": dim, "n": args.n, "ingest_per_s": args.n / seconds}
    row |= work.observe(index, settings, os_pid or 0, before)
    row["segments"] = len(index.client.cat.segments(index=index.name, format="json"))
    row["engine"] = index.describe()["engine"]
    row["store_mb"] = (
        index.client.indices.stats(index=index.name)["_all"]["primaries"]["store"]["size_in_bytes"] / 2**20
    )
    rows.append(row)
    print(f"  opensearch {dim}-d as ingested ({row['segments']} segments); merging into one ...", flush=True)
    merged = index.merge()
    rows.append({"backend": "opensearch+merge", "dim": dim, "n": args.n, "merge_s": merged["seconds"],
                 "ingest_per_s": args.n / (seconds + merged["seconds"])}
                | work.observe(index, settings, os_pid or 0, before))  # fmt: skip
    index.client.indices.delete(index=index.name)
    print(f"  opensearch {dim}-d merged in {merged['seconds']:.0f} s", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dims", default="1280,2048")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef-search", type=int, default=100)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=100)
    parser.add_argument("--api-requests", type=int, default=50, help="search-by-image requests per backend (0: skip)")
    parser.add_argument("--opensearch-url", help="an existing node (else one is started for the run)")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_backends.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lookalike-bench-backends-") as tmp_name:
        tmp = Path(tmp_name)
        node = None
        if args.opensearch_url:
            os_url, os_pid = args.opensearch_url, None
        else:
            installation, java_home = opensearch_node.prepare()
            home = tmp / "node"
            home.mkdir()
            tmp.chmod(0o755)
            config = opensearch_node.NodeConfig("bench", home, ports.free_port(), ports.free_port(), cluster="bench")
            node = opensearch_node.LocalNode(config, installation, java_home).start()
            os_url, os_pid = node.url, node.pid()
        try:
            if args.api_requests:
                with stack.torchserve([DEFAULT_MODEL], MODEL_STORE, RUN_DIR / "bench-backends") as server:
                    rows = [row for dim in map(int, args.dims.split(","))
                            for row in run_dimension(dim, args, os_url, os_pid, server.inference_url, tmp)]  # fmt: skip
            else:
                rows = [row for dim in map(int, args.dims.split(","))
                        for row in run_dimension(dim, args, os_url, os_pid, None, tmp)]  # fmt: skip
        finally:
            if node:
                node.stop()
    print(f"\n{args.n} vectors, k={K}, ef_search={args.ef_search}, M={args.m}, ef_construction={args.ef_construction}; "
          f"filter: 1 category of {CATEGORIES}")  # fmt: skip
    head = (f"{'backend':<16} {'dim':>5} {'ingest/s':>9} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'f.recall':>8} {'f.p50':>7} {'f.p95':>7} {'RSS MB':>7} {'+MB':>6} {'API p50':>8}")  # fmt: skip
    print(head)
    for r in rows:
        api = f"{r['api_search_by_image_p50_ms']:.1f}" if "api_search_by_image_p50_ms" in r else "-"
        print(f"{r['backend']:<16} {r['dim']:>5} {r['ingest_per_s']:>9.0f} {r['recall_at_10']:>9.4f} "
              f"{r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f} {r['filtered_recall_at_10']:>8.4f} "
              f"{r['filtered_p50_ms']:>7.2f} {r['filtered_p95_ms']:>7.2f} {r['rss_mb']:>7.0f} "
              f"{r['rss_growth_mb']:>6.0f} {api:>8}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2))
    print(f"JSON: {args.out}")
    return 0
