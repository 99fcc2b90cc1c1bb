"""What region vectors cost against one vector per image, measured in one run.

1. Embedding, with real TorchServe (EfficientNet-Lite0, the bundled photos, --concurrency
   clients): images/s with one vector per image, and per region scheme with the handler cutting
   the regions (one request, one decode) against the client cutting them (the whole image and
   each region re-encoded as JPEG and sent as its own request) — which side should crop.
2. Ingest images/s through the real pipeline into a fresh embedded index, per scheme.
3. The embedded index, with synthetic embedding-like vectors (`lookalike bench index`'s mixture;
   a region vector is its image's vector plus noise, cosine ~0.6 to it): --images images per
   scheme in a fresh process, the index's resident memory and search p50/p95 (k 10), and from
   them memory per million images.
4. OpenSearch, on a real local node: --opensearch-images of the same synthetic images per scheme
   (regions as nested knn_vector documents), bulk-loaded and merged to one segment; ingest
   images/s, search p50/p95 (k 10), and the vector files that must stay in the page cache (graph
   + float32 vectors) per million images.

    lookalike bench regions --schemes none,grid2,win2 --repeats 3
    lookalike bench regions --parts opensearch --opensearch-images 5000
"""

from __future__ import annotations

import io
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from lookalike_handler.regions import SCHEMES, crops
from PIL import Image

from lookalike import bench, opensearch_node, stack
from lookalike.bench.index import Mixture
from lookalike.bench.ingest import unique_copies
from lookalike.bench.opensearch_scale import vector_files
from lookalike.bench.rss import current_rss_mb
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.ingest.pipeline import Ingestor
from lookalike.ingest.sources import from_folder
from lookalike.photos import all_photos
from lookalike.serving.client import ModelClient
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings


def embed_rate(client: ModelClient, images: list[bytes], scheme: str, where: str, concurrency: int) -> float:
    """Images/s embedding `images` with their regions cut by the handler or by the client."""

    def handler_side(data: bytes) -> None:
        client.embed_response(data, regions=scheme)

    def client_side(data: bytes) -> None:
        img = Image.open(io.BytesIO(data)).convert("RGB")
        for part in [img, *crops(img, scheme)]:
            buffer = io.BytesIO()
            part.save(buffer, format="JPEG", quality=90)
            client.embed(buffer.getvalue())

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(handler_side if where == "handler" else client_side, images))
    return len(images) / (time.perf_counter() - started)


def ingest_rate(ts_url: str, info, photos: dict[str, bytes], scheme: str, folder: Path, concurrency: int) -> float:
    """Images/s through the real ingest pipeline into a fresh embedded index with `scheme`."""
    folder.mkdir()
    n = unique_copies(photos, 2, folder)
    settings = Settings(ts_url=ts_url, data_dir=folder.with_name(folder.name + "-index"), regions=scheme)
    index = EmbeddedIndex(settings.data_dir, settings.alias, info.model, info.dimension, regions=scheme)
    started = time.perf_counter()
    Ingestor(settings, index, info, concurrency=concurrency).run(from_folder(folder), n, progress=False)
    return n / (time.perf_counter() - started)


def region_docs(scheme: str, images: int, d: int, size: int = 2000) -> Iterator[list[Doc]]:
    """Synthetic images with their regions under `scheme`, in chunks of `size` (ids "0", "1", ...)."""
    regions = len(SCHEMES[scheme])
    mixture = Mixture(d, seed=d)
    rng = np.random.default_rng(1)
    for start in range(0, images, size):
        docs = []
        for i, whole in enumerate(mixture.draw(min(size, images - start))):
            parts = whole + 0.04 * rng.standard_normal((regions, d)).astype(np.float32)
            parts /= np.linalg.norm(parts, axis=1, keepdims=True)
            docs.append(Doc(id=str(start + i), vector=whole, model="synthetic", region_scheme=scheme,
                            regions=list(zip(SCHEMES[scheme], parts, strict=True))))  # fmt: skip
        yield docs


def latencies_ms(index, xq: np.ndarray) -> dict:
    """Search p50/p95 (ms, k 10) of `index` over the queries `xq`."""
    latencies = []
    for query in xq:
        t0 = time.perf_counter()
        index.search(query, 10)
        latencies.append((time.perf_counter() - t0) * 1000)
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"p50_ms": float(p50), "p95_ms": float(p95)}


def index_cost(scheme: str, images: int, d: int, queries: int) -> dict:
    """Run in a fresh process: fill an index with synthetic images and their regions, then search."""
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-regions-") as tmp:
        index = EmbeddedIndex(Path(tmp), "bench", "synthetic", d, regions=scheme)
        base = current_rss_mb()
        for docs in region_docs(scheme, images, d):
            index.upsert(docs)
        started = time.perf_counter()
        index.search(docs[0].vector, 10)  # builds the graph
        build_s = time.perf_counter() - started
        measured = latencies_ms(index, Mixture(d, seed=d, stream=1).draw(queries))
        grown = current_rss_mb() - base
    return {"images": images, "vectors": images * (1 + len(SCHEMES[scheme])), "build_s": build_s,
            "index_rss_mb": grown, "mb_per_million_images": grown * 1e6 / images, **measured}  # fmt: skip


def opensearch_cost(node, scheme: str, images: int, d: int, queries: int) -> dict:
    """Bulk-load synthetic images with `scheme`'s regions into a fresh index on `node`, merge, search."""
    settings = Settings(opensearch_url=node.url, alias=f"bench-regions-{scheme.replace('+', '-')}",
                        engine="lucene", quantization="none", regions=scheme)  # fmt: skip
    index = OpenSearchIndex(settings, "synthetic", d)
    try:
        started = time.perf_counter()
        for docs in region_docs(scheme, images, d, size=500):
            _, failures = index.upsert(docs)
            if failures:
                raise RuntimeError(f"{len(failures)} writes failed, e.g. {failures[0]}")
        index.flush()
        ingest_s = time.perf_counter() - started
        merge_s = index.merge()["seconds"]
        xq = Mixture(d, seed=d, stream=1).draw(queries)
        latencies_ms(index, xq[:100])  # warm-up: the page cache, and the JIT of a node started for the run
        measured = latencies_ms(index, xq)
        uuid = index.client.indices.get_settings(index=index.name)[index.name]["settings"]["index"]["uuid"]
        files = vector_files(node.config.home / "data", uuid)
        hot = files[".vec"] + files[".vex"]
    finally:
        index.client.indices.delete(index=index.name)
    return {"os_ingest_per_s": images / ingest_s, "os_merge_s": merge_s, "os_p50_ms": measured["p50_ms"],
            "os_p95_ms": measured["p95_ms"], "os_hot_gb_per_million_images": hot * 1e6 / images / 2**30}  # fmt: skip


def measure_embedding(args, schemes: list[str], rows: dict[str, dict]) -> None:
    """Parts 1 and 2 on a TorchServe started for the run: medians over --repeats, schemes alternating."""
    photos = all_photos()
    images = list(photos.values())
    stack.ensure_archive(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-regions-") as tmp_name, \
            stack.torchserve([DEFAULT_MODEL], MODEL_STORE, Path(tmp_name) / "ts") as server:  # fmt: skip
        tmp = Path(tmp_name)
        client = ModelClient(server.inference_url, DEFAULT_MODEL)
        info = client.info()
        embed_rate(client, images[:16], "none", "handler", args.concurrency)  # warm-up
        runs: dict[str, dict[str, list[float]]] = {scheme: {} for scheme in schemes}
        for repeat in range(args.repeats):  # schemes alternate within each repeat: drift hits all alike
            for scheme in schemes:
                measured = runs[scheme]
                measured.setdefault("embed_handler_per_s", []).append(
                    embed_rate(client, images, scheme, "handler", args.concurrency)
                )
                if scheme != "none":
                    measured.setdefault("embed_client_per_s", []).append(
                        embed_rate(client, images, scheme, "client", args.concurrency)
                    )
                measured.setdefault("ingest_per_s", []).append(
                    ingest_rate(
                        server.inference_url, info, photos, scheme, tmp / f"{scheme}-{repeat}", args.concurrency
                    )
                )
                print(f"  {scheme}: embedding and ingest measured (repeat {repeat + 1})", flush=True)
        for scheme, measured in runs.items():
            rows[scheme] |= {key: float(np.median(values)) for key, values in measured.items()}
            rows[scheme]["runs"] = measured
        client.close()


def measure_opensearch(args, schemes: list[str], rows: dict[str, dict]) -> None:
    """Part 4 on one local node started for the run (1 GB heap), each scheme in a fresh index."""
    with opensearch_node.throwaway_node("bench-regions") as node:
        for scheme in schemes:
            rows[scheme] |= opensearch_cost(node, scheme, args.opensearch_images, args.dim, 200)
            print(f"  {scheme}: OpenSearch measured", flush=True)


def cell(row: dict, key: str, form: str, width: int, scale: float = 1.0) -> str:
    return f"{row[key] * scale:>{width}{form}}" if key in row else f"{'-':>{width}}"


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--schemes", default="none,grid2,win2")
    parser.add_argument("--parts", default="embed,index,opensearch", help="which to measure, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="embedding and ingest runs per scheme (medians)")
    parser.add_argument("--images", type=int, default=20_000, help="synthetic images for the embedded index part")
    parser.add_argument("--opensearch-images", type=int, default=5_000, help="synthetic images for OpenSearch")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_regions.json")
    args = parser.parse_args(argv)
    schemes = args.schemes.split(",")
    parts = set(args.parts.split(","))
    rows: dict[str, dict] = {scheme: {"vectors_per_image": 1 + len(SCHEMES[scheme])} for scheme in schemes}
    if "embed" in parts:
        measure_embedding(args, schemes, rows)
    if "index" in parts:
        spawn = multiprocessing.get_context("spawn")
        for scheme in schemes:
            with spawn.Pool(1) as pool:
                rows[scheme] |= pool.apply(index_cost, (scheme, args.images, args.dim, 200))
            print(f"  {scheme}: embedded index measured", flush=True)
    if "opensearch" in parts:
        measure_opensearch(args, schemes, rows)

    print(f"\nregion vectors vs one per image: embedding and ingest with EfficientNet-Lite0 served here, 51 "
          f"photos, {args.concurrency} clients, medians of {args.repeats} runs; embedded index: {args.images:,} "
          f"synthetic {args.dim}-d images, sq8; OpenSearch: {args.opensearch_images:,} images, float32, Lucene, "
          f"merged")  # fmt: skip
    print(f"{'scheme':<8} {'vectors/img':>11} {'embed img/s':>11} {'client-cut':>10} {'ingest img/s':>12} "
          f"{'index MB':>9} {'GB per M img':>12} {'p50 ms':>7} {'p95 ms':>7} {'OS ingest/s':>11} "
          f"{'OS hot GB/M':>11} {'OS p50':>7} {'OS p95':>7}")  # fmt: skip
    for scheme, r in rows.items():
        print(f"{scheme:<8} {r['vectors_per_image']:>11} {cell(r, 'embed_handler_per_s', '.1f', 11)} "
              f"{cell(r, 'embed_client_per_s', '.1f', 10)} {cell(r, 'ingest_per_s', '.1f', 12)} "
              f"{cell(r, 'index_rss_mb', '.0f', 9)} {cell(r, 'mb_per_million_images', '.1f', 12, 1 / 1024)} "
              f"{cell(r, 'p50_ms', '.2f', 7)} {cell(r, 'p95_ms', '.2f', 7)} {cell(r, 'os_ingest_per_s', '.0f', 11)} "
              f"{cell(r, 'os_hot_gb_per_million_images', '.2f', 11)} {cell(r, 'os_p50_ms', '.2f', 7)} "
              f"{cell(r, 'os_p95_ms', '.2f', 7)}")  # fmt: skip
    bench.write_report(args.out, args, rows=rows)
    return 0
