"""Embedded index at scale: recall@10 against exact search, query speed, memory, build and open time.

Two synthetic sets, each measured on its own (`--vectors`):
- mixture: a 64-d latent mixture of 500 clusters projected to D dimensions plus noise
  (image embeddings have a low intrinsic dimension): the easy case, recall near 1 everywhere;
- gaussian: spectrum-matched to EfficientNet-Lite0 embeddings of real photos, no clusters
  (spectrum.Gaussian, 1280-d only): the hard case.
Real catalogues lie between the two. Vectors are made and written in chunks, so a million
never sit in memory at once. Queries are fresh draws from the same set (another random stream),
not copies of indexed vectors. Each document gets one of 100 categories, so a category filter
keeps 1 %.

The SQLite file is written once; then, per graph (`--graphs`: how it holds its vectors, its
projection, M and efConstruction), the graph and the re-rank's vector file are built and saved by
this process and measured by a fresh one that opens them (open time, peak resident memory,
searches). By default the project's graph (reduced: a walk in 128 or more principal directions,
as many as keep 0.84 of the variance) is measured beside the full-length graph that was the
default before it. Prints a table, writes JSON.

    lookalike bench index --n 1000000                       # reduced vs full, both sets
    lookalike bench index --n 1000000 --graphs sq8:p0,fp16:p0,rabitq:p0:m48:efc40
    lookalike bench index --n 1000000 --vectors gaussian --graphs sq8:p96,sq8:p256 --rerank 8
    lookalike bench index --n 1000000 --dim 2048
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike import bench
from lookalike.bench import ivfpq
from lookalike.bench.rss import current_rss_mb, peak_rss_mb
from lookalike.bench.spectrum import Gaussian
from lookalike.index.documents import Doc
from lookalike.index.embedded import EF_CONSTRUCTION, EmbeddedIndex, M
from lookalike.index.vectors import NAME as VECTORS
from lookalike.settings import QUANTIZATIONS, REPORTS_DIR, Settings

DEFAULTS = Settings()
FULL_GRAPH = "sq8:p0:m16:efc100"  # the default before the reduced graph, measured beside it

CATEGORIES = 100
CHUNK = 10_000


class Mixture:
    """Embedding-like unit vectors [m, D] float32, drawn `m` at a time from one fixed mixture."""

    def __init__(self, d: int, seed: int = 0, stream: int = 0, latent_dim: int = 64, clusters: int = 500) -> None:
        """`seed` fixes the mixture (centres, projection); `stream` which draws come out of it."""
        structure = np.random.default_rng(seed)
        self.centres = structure.standard_normal((clusters, latent_dim))
        self.projection = structure.standard_normal((latent_dim, d)) / np.sqrt(latent_dim)
        self.rng = structure if stream == 0 else np.random.default_rng([seed, stream])
        self.d = d

    def draw(self, m: int) -> np.ndarray:
        z = self.centres[self.rng.integers(0, len(self.centres), m)]
        z = z + 0.5 * self.rng.standard_normal(z.shape)
        x = z @ self.projection + 0.05 * self.rng.standard_normal((m, self.d))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


VECTOR_SETS = {"mixture": Mixture, "gaussian": Gaussian}  # name -> class(d, seed, stream) with draw(m)


@dataclass(frozen=True)
class GraphSpec:
    """One graph to build: KIND[:pP][:mM][:efcE], the rest from the project's settings."""

    quantization: str
    projection: int
    m: int
    ef_construction: int

    @property
    def label(self) -> str:
        return f"{self.quantization}:p{self.projection}:m{self.m}:efc{self.ef_construction}"


def graph_specs(text: str) -> list[GraphSpec]:
    """The comma-separated `--graphs`, each KIND[:pP][:mM][:efcE] (P 0: the full vectors), checked."""
    specs = []
    for spec in (part for part in text.split(",") if part):
        kind, *options = spec.split(":")
        if kind not in QUANTIZATIONS:
            raise SystemExit(f"unknown graph kind {kind!r} in --graphs: choose from {', '.join(QUANTIZATIONS)}")
        values = {"p": DEFAULTS.projection, "m": DEFAULTS.m or M, "efc": DEFAULTS.ef_construction or EF_CONSTRUCTION}
        for option in options:
            name = option.rstrip("0123456789")
            if name not in values or name == option:
                raise SystemExit(f"cannot read {option!r} in --graphs {spec!r}: give p<dims>, m<M> or "
                                 "efc<efConstruction>")  # fmt: skip
            values[name] = int(option[len(name) :])
        specs.append(GraphSpec(kind, values["p"], values["m"], values["efc"]))
    return specs


def vector_sets(names: str) -> list[str]:
    """The comma-separated `--vectors` names, checked."""
    chosen = [name for name in names.split(",") if name]
    if unknown := set(chosen) - set(VECTOR_SETS):
        raise SystemExit(f"unknown --vectors {', '.join(sorted(unknown))}: choose from {', '.join(VECTOR_SETS)}")
    return chosen


def dataset(n: int, d: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` indexed vectors and `nq` queries that are perturbed copies of some of them (near-duplicates)."""
    mixture = Mixture(d, seed)
    xb = np.concatenate([mixture.draw(min(CHUNK, n - start)) for start in range(0, n, CHUNK)])
    xq = xb[mixture.rng.integers(0, n, nq)] + 0.02 * mixture.rng.standard_normal((nq, d)).astype(np.float32)
    return xb, (xq / np.linalg.norm(xq, axis=1, keepdims=True)).astype(np.float32)


def measure(index, xq: np.ndarray, truth: np.ndarray, category=None, k: int = 10, ef_search: int | None = None
            ) -> dict:  # fmt: skip
    """recall@k of `index` against the exact `truth` ids [nq, k], and its query latency p50/p95 (ms).
    `category` is one name for every query, or a list with one per query; `ef_search` None: the index's own."""
    latencies, recalls = [], []
    for i, (query, want) in enumerate(zip(xq, truth, strict=True)):
        name = category[i] if isinstance(category, list) else category
        t0 = time.perf_counter()
        hits = index.search(query, k, category=name, ef_search=ef_search)
        latencies.append((time.perf_counter() - t0) * 1000)
        recalls.append(len({int(hit.id) for hit in hits} & set(want.tolist())) / k)
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"recall_at_10": float(np.mean(recalls)), "p50_ms": float(p50), "p95_ms": float(p95)}


class Truth:
    """Exact top-k ids of each query, overall and within the query's category, kept up to date chunk by chunk."""

    def __init__(self, xq: np.ndarray, query_categories: np.ndarray, k: int) -> None:
        self.xq, self.cq, self.k = xq, query_categories, k
        self.best = [np.full((len(xq), 0), -np.inf), np.full((len(xq), 0), -np.inf)]
        self.ids = [np.zeros((len(xq), 0), dtype=np.int64), np.zeros((len(xq), 0), dtype=np.int64)]

    def add(self, xb: np.ndarray, first_id: int, categories: np.ndarray) -> None:
        scores = self.xq @ xb.T
        ids = np.broadcast_to(np.arange(first_id, first_id + len(xb)), scores.shape)
        masked = np.where(categories[None, :] == self.cq[:, None], scores, -np.inf)
        for which, s in enumerate((scores, masked)):
            all_s = np.concatenate([self.best[which], s], axis=1)
            all_i = np.concatenate([self.ids[which], ids], axis=1)
            top = np.argsort(-all_s, axis=1)[:, : self.k]
            self.best[which] = np.take_along_axis(all_s, top, axis=1)
            self.ids[which] = np.take_along_axis(all_i, top, axis=1)


def synthetic_docs(n: int, d: int, seed: int, truth: Truth | None = None, vectors: str = "mixture"
                   ) -> Iterator[list[Doc]]:  # fmt: skip
    """The benchmark's `n` documents of set `vectors`, CHUNK at a time: ids "0".."n-1", one of
    CATEGORIES each, added to `truth` (if given) as they are drawn."""
    drawn = VECTOR_SETS[vectors](d, seed)
    for start in range(0, n, CHUNK):
        xb = drawn.draw(min(CHUNK, n - start))
        categories = (np.arange(start, start + len(xb)) % CATEGORIES).astype(np.int64)
        if truth is not None:
            truth.add(xb, start, categories)
        yield [Doc(id=str(start + i), vector=v, model="synthetic", category=f"c{categories[i]}")
               for i, v in enumerate(xb)]  # fmt: skip


def write(index: EmbeddedIndex, n: int, d: int, truth: Truth, seed: int, vectors: str) -> float:
    """Stream `n` vectors of set `vectors` into the index's SQLite and `truth`; returns seconds spent writing."""
    spent, last_report, done = 0.0, time.perf_counter(), 0
    for docs in synthetic_docs(n, d, seed, truth, vectors):
        t0 = time.perf_counter()
        index.upsert(docs)
        spent += time.perf_counter() - t0
        done += len(docs)
        if time.perf_counter() - last_report > 30:
            print(f"  wrote {done:,}/{n:,} vectors ({done / spent:.0f}/s)", flush=True)
            last_report = time.perf_counter()
    return spent


def open_index(directory: Path, d: int, graph: GraphSpec, rerank: int = DEFAULTS.rerank) -> EmbeddedIndex:
    return EmbeddedIndex(directory, "bench", "synthetic", d, graph.m, graph.ef_construction,
                         quantization=graph.quantization, rerank=rerank, projection=graph.projection)  # fmt: skip


def probe(directory: str, d: int, graph: GraphSpec, xq: np.ndarray, truth: list, categories: list,
          ef_searches: list[int], reranks: list[int]) -> dict:  # fmt: skip
    """Run in a fresh process: open the saved index, search (each re-rank depth at each efSearch),
    report open time and peak RSS."""
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    index = open_index(Path(directory), d, graph, reranks[0])
    open_s = time.perf_counter() - t0
    for query in xq:  # warm the page cache the re-ranking reads from (every query's rows), and the graph
        index.search(query, 10, ef_search=ef_searches[0])
    rows = []
    for rerank in reranks:
        index.rerank = rerank
        for ef in ef_searches:
            row = {"rerank": rerank, "ef_search": ef, **measure(index, xq, truth[0], ef_search=ef)}
            filtered = measure(index, xq, truth[1], categories, ef_search=ef)
            row |= {f"filtered_{key}": value for key, value in filtered.items()}
            rows.append(row)
    peak = peak_rss_mb()
    files = [Path(directory) / index.name / name for name in GRAPH_FILES]
    graph_mb = sum(path.stat().st_size for path in files if path.exists()) / 2**20
    copy_mb = (Path(directory) / index.name / VECTORS).stat().st_size / 2**20
    return {"open_s": open_s, "rss_import_mb": rss_before, "peak_rss_mb": peak, "graph_file_mb": graph_mb,
            "vectors_file_mb": copy_mb,
            "rss_mb": current_rss_mb(), "graph": index.graph_kind, "projection": index.graph.describe()["projection"],
            "rows": rows}  # fmt: skip


GRAPH_FILES = ("graph.faiss", "codes.faiss", "projection.npz", "graph.json")  # codes: rabitq's


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--vectors", default="mixture,gaussian", help=f"comma-separated, of {', '.join(VECTOR_SETS)}")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--graphs", default=f"{DEFAULTS.quantization or 'sq8'},{FULL_GRAPH}",
                        help=f"comma-separated KIND[:pP][:mM][:efcE] (KIND of {', '.join(QUANTIZATIONS)}; P 0: no "
                             "projection; unset parts: the project's settings)")  # fmt: skip
    parser.add_argument("--ef-search", default="64,128,256", help="comma-separated efSearch values to measure")
    parser.add_argument("--rerank", default=str(DEFAULTS.rerank),
                        help="comma-separated R: a quantised graph proposes R x k candidates to re-rank")  # fmt: skip
    parser.add_argument("--ivfpq", metavar="NLIST,M", help="also measure IVF-PQ + exact re-ranking, e.g. 1024,64")
    parser.add_argument("--nprobe", default="16,64", help="comma-separated nprobe values for --ivfpq")
    parser.add_argument("--dir", type=Path, help="build here and keep it (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="JSON report (default: reports/bench_index_<n>_<dim>.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  %(message)s")  # the graph build's progress
    graphs = graph_specs(args.graphs)
    ef_searches = [int(e) for e in args.ef_search.split(",")]
    args.rerank = [int(r) for r in args.rerank.split(",")]
    sets = vector_sets(args.vectors)
    for name in sets:
        VECTOR_SETS[name](args.dim)  # a set that cannot be drawn at this dimension says so before any work

    k = 10
    results, writes, ivf = [], {}, {}
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-index-") as tmp:
        for name in sets:
            directory = (args.dir or Path(tmp)) / name
            xq = VECTOR_SETS[name](args.dim, seed=args.dim, stream=1).draw(args.queries)  # held out: another stream
            query_categories = np.arange(args.queries) % CATEGORIES
            truth = Truth(xq, query_categories, k)
            index = EmbeddedIndex(directory, "bench", "synthetic", args.dim)
            if index.count():
                raise SystemExit(f"{directory} already holds an index: give an empty --dir")
            print(f"writing {args.n:,} {name} vectors x {args.dim}-d to SQLite ...", flush=True)
            writes[name] = write(index, args.n, args.dim, truth, seed=args.dim, vectors=name)
            index.db.close()  # not close(): that would build a graph, which each kind below times
            for graph in graphs:
                measured = build_and_probe(directory, args, graph, xq, truth, query_categories, ef_searches)
                results.append({"vectors": name, "graph_spec": graph.label, "quantization": graph.quantization,
                                **measured})  # fmt: skip
            if args.ivfpq:
                nlist, m = (int(part) for part in args.ivfpq.split(","))
                print(f"IVF-PQ ({nlist} lists, {m} bytes per vector) ...", flush=True)
                db_file = str(directory / index_name(args.dim) / "docs.sqlite")
                nprobes = [int(p) for p in args.nprobe.split(",")]
                with multiprocessing.get_context("spawn").Pool(1) as pool:
                    ivf[name] = pool.apply(ivfpq.probe, (db_file, args.dim, xq, truth.ids[0], nprobes, nlist, m))

    print(f"\n{args.n:,} vectors x {args.dim}-d; graph KIND:pPROJECTION:mM:efcEF_CONSTRUCTION; "
          f"re-rank R x k; filter: 1 category of {CATEGORIES}; SQLite write "
          + ", ".join(f"{name} {s:.0f} s ({args.n / s:,.0f}/s)" for name, s in writes.items()))  # fmt: skip
    print(f"{'vectors':>8} {'graph':>20} {'build s':>8} {'open s':>7} {'graph MB':>9} {'copy MB':>8} "
          f"{'peak RSS MB':>12} "
          f"{'R':>3} {'efSearch':>8} {'recall@10':>9} {'p50 ms':>7} {'p95 ms':>7} {'filt. recall':>12} "
          f"{'filt. p50':>9}")  # fmt: skip
    for result in results:
        for row in result["rows"]:
            print(f"{result['vectors']:>8} {result['graph_spec']:>20} {result['build_s']:>8.0f} "
                  f"{result['open_s']:>7.1f} {result['graph_file_mb']:>9.0f} {result['vectors_file_mb']:>8.0f} "
                  f"{result['peak_rss_mb']:>12.0f} "
                  f"{row['rerank']:>3} {row['ef_search']:>8} {row['recall_at_10']:>9.4f} {row['p50_ms']:>7.2f} "
                  f"{row['p95_ms']:>7.2f} "
                  f"{row['filtered_recall_at_10']:>12.4f} {row['filtered_p50_ms']:>9.2f}")  # fmt: skip
    for name, measured in ivf.items():
        print(f"{name} {measured['quantization']}: build {measured['build_s']:.0f} s, index {measured['index_mb']:.0f} "
              f"MB, peak RSS {measured['peak_rss_mb']:.0f} MB (the training sample included)")  # fmt: skip
        for row in measured["rows"]:
            print(f"  nprobe {row['nprobe']:>4}  recall@10 {row['recall_at_10']:.4f}  p50 {row['p50_ms']:.2f} ms  "
                  f"p95 {row['p95_ms']:.2f} ms")  # fmt: skip
    args.out = args.out or REPORTS_DIR / f"bench_index_{args.n}_{args.dim}.json"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"n": args.n, "dim": args.dim, "graphs": [graph.label for graph in graphs], "rerank": args.rerank,
            "queries": args.queries, "categories": CATEGORIES, "write_s": writes,
            "vectors": {"mixture": "64-d latent mixture of 500 clusters", "gaussian": "spectrum-matched to Lite0",
                        "queries": "held out: fresh draws"}}  # fmt: skip
    args.out.write_text(json.dumps({"meta": meta, "results": results, "ivfpq": ivf}, indent=2))
    print(f"JSON: {args.out}")
    return 0


def build_and_probe(directory: Path, args, graph: GraphSpec, xq: np.ndarray, truth: Truth,
                    query_categories: np.ndarray, ef_searches: list[int]) -> dict:  # fmt: skip
    """Build and save `graph` over the SQLite in `directory` (timed, with this process's peak RSS),
    measure it from a fresh process, then remove it so the next graph builds from SQLite."""
    print(f"building the {graph.label} graph ...", flush=True)
    t0 = time.perf_counter()
    index = open_index(directory, args.dim, graph)
    index.close()  # saves the graph
    build_s = time.perf_counter() - t0
    build_rss = peak_rss_mb()
    del index
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        probed = pool.apply(probe, (str(directory), args.dim, graph, xq, truth.ids,
                                    [f"c{c}" for c in query_categories], ef_searches, args.rerank))  # fmt: skip
    for name in (*GRAPH_FILES, VECTORS):  # the vector file too: each build's time includes filling it
        (directory / index_name(args.dim) / name).unlink(missing_ok=True)
    return {"build_s": build_s, "build_peak_rss_mb": build_rss, **probed}


def index_name(d: int) -> str:
    return f"bench-synthetic-{d}"
