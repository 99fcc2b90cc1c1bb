"""What region vectors cost against one vector per image, measured in one run.

1. Embedding, with real TorchServe (EfficientNet-Lite0, the bundled photos, --concurrency
   clients): images/s with one vector per image, and per region scheme with the handler cutting
   the regions (one request, one decode) against the client cutting them (the whole image and
   each region re-encoded as JPEG and sent as its own request) — which side should crop.
2. Ingest images/s through the real pipeline into a fresh embedded index, per scheme.
3. The index, with synthetic embedding-like vectors (`lookalike bench index`'s mixture; a
   region vector is its image's vector plus noise, cosine ~0.6 to it): --images images per
   scheme in a fresh process, the index's resident memory and search p50/p95 (k 10), and from
   them memory per million images.

    lookalike bench regions --schemes none,grid2,win2 --repeats 3
"""

from __future__ import annotations

import io
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from lookalike_handler.regions import SCHEMES, crops
from PIL import Image

from lookalike import bench, stack
from lookalike.bench.index import Mixture, current_rss_mb
from lookalike.bench.ingest import unique_copies
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
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


def index_cost(scheme: str, images: int, d: int, queries: int) -> dict:
    """Run in a fresh process: fill an index with synthetic images and their regions, then search."""
    regions = len(SCHEMES[scheme])
    mixture = Mixture(d, seed=d)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-regions-") as tmp:
        index = EmbeddedIndex(Path(tmp), "bench", "synthetic", d, regions=scheme)
        base = current_rss_mb()
        for start in range(0, images, 2000):
            xb = mixture.draw(min(2000, images - start))
            docs = []
            for i, whole in enumerate(xb):
                parts = whole + 0.04 * rng.standard_normal((regions, d)).astype(np.float32)
                parts /= np.linalg.norm(parts, axis=1, keepdims=True)
                docs.append(Doc(id=str(start + i), vector=whole, model="synthetic", region_scheme=scheme,
                                regions=list(zip(SCHEMES[scheme], parts, strict=True))))  # fmt: skip
            index.upsert(docs)
        started = time.perf_counter()
        index.search(xb[0], 10)  # builds the graph
        build_s = time.perf_counter() - started
        xq = Mixture(d, seed=d, stream=1).draw(queries)
        latencies = []
        for query in xq:
            t0 = time.perf_counter()
            index.search(query, 10)
            latencies.append((time.perf_counter() - t0) * 1000)
        grown = current_rss_mb() - base
    p50, p95 = np.percentile(latencies, [50, 95])
    return {"images": images, "vectors": images * (1 + regions), "build_s": build_s, "index_rss_mb": grown,
            "mb_per_million_images": grown * 1e6 / images, "p50_ms": float(p50), "p95_ms": float(p95)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--schemes", default="none,grid2,win2")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="embedding and ingest runs per scheme (medians)")
    parser.add_argument("--images", type=int, default=20_000, help="synthetic images for the index part")
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_regions.json")
    args = parser.parse_args(argv)
    schemes = args.schemes.split(",")
    photos = all_photos()
    images = list(photos.values())
    rows: dict[str, dict] = {scheme: {"vectors_per_image": 1 + len(SCHEMES[scheme])} for scheme in schemes}
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
    spawn = multiprocessing.get_context("spawn")
    for scheme in schemes:
        with spawn.Pool(1) as pool:
            rows[scheme] |= pool.apply(index_cost, (scheme, args.images, args.dim, 200))
        print(f"  {scheme}: index measured", flush=True)

    print(f"\nregion vectors vs one per image (EfficientNet-Lite0 served on this machine, {len(images)} photos, "
          f"{args.concurrency} clients, medians of {args.repeats} runs; index: {args.images:,} synthetic "
          f"{args.dim}-d images, sq8)")  # fmt: skip
    print(f"{'scheme':<8} {'vectors/img':>11} {'embed img/s':>11} {'client-cut':>10} {'ingest img/s':>12} "
          f"{'index MB':>9} {'GB per M img':>12} {'p50 ms':>7} {'p95 ms':>7}")  # fmt: skip
    for scheme, r in rows.items():
        client_cut = f"{r['embed_client_per_s']:.1f}" if "embed_client_per_s" in r else "-"
        print(f"{scheme:<8} {r['vectors_per_image']:>11} {r['embed_handler_per_s']:>11.1f} {client_cut:>10} "
              f"{r['ingest_per_s']:>12.1f} {r['index_rss_mb']:>9.0f} {r['mb_per_million_images'] / 1024:>12.1f} "
              f"{r['p50_ms']:>7.2f} {r['p95_ms']:>7.2f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2))
    print(f"JSON: {args.out}")
    return 0
