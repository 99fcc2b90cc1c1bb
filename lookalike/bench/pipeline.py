"""Image search inside OpenSearch vs our own path, in one run: indexing through the ml-commons
ingest pipeline vs `lookalike ingest`, and searching through the search pipeline vs POST /search.

A throwaway OpenSearch 2.19 node with ml-commons and one TorchServe (EfficientNet-Lite0) serve both
sides; `lookalike opensearch connect`'s steps make the connector, model and pipelines. The bundled
photos, --rounds times under new ids, are indexed twice: as a site would, `_bulk` requests of
--batch documents carrying base64 images through the ingest pipeline (--clients at once; by
default 8 x 8, as many images in flight as our ingest keeps), and by our ingest (its default
concurrency, 8) into an alias of the same node. Then every bundled photo is
a query, one at a time, k 10: a template k-NN query through the search pipeline vs POST /search of
our API (in this process) on the alias. One run of each, as the issue asks.

    lookalike bench pipeline --rounds 4
"""

from __future__ import annotations

import base64
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from lookalike import bench, opensearch_node, stack
from lookalike.api import process
from lookalike.index import opensearch_client, opensearch_index
from lookalike.ml_connect.connect import Connector, ensure_index, index_body_for
from lookalike.ml_connect.plan import Plan
from lookalike.photos import all_photos
from lookalike.serving.client import ModelClient
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings


def bulk_through_pipeline(url: str, index: str, docs: list[tuple[str, bytes]], batch: int, clients: int) -> float:
    """Seconds to index `docs` (id, image) by _bulk through the index's default pipeline."""
    chunks = [docs[start : start + batch] for start in range(0, len(docs), batch)]

    def send(chunk: list[tuple[str, bytes]]) -> None:
        lines = []
        for doc_id, data in chunk:
            lines += [json.dumps({"index": {"_index": index, "_id": doc_id}}),
                      json.dumps({"title": doc_id, "image": base64.b64encode(data).decode("ascii")})]  # fmt: skip
        answer = httpx.post(f"{url}/_bulk", content="\n".join(lines) + "\n", timeout=600,
                            headers={"Content-Type": "application/x-ndjson"})  # fmt: skip
        answer.raise_for_status()
        failed = [item["index"] for item in answer.json()["items"] if item["index"].get("status", 500) >= 300]
        if failed:
            raise RuntimeError(f"{len(failed)} documents failed through the pipeline: {failed[0]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, chunks))
    seconds = time.perf_counter() - started
    httpx.post(f"{url}/{index}/_refresh", timeout=60).raise_for_status()
    return seconds


def timed(call, queries: list[bytes]) -> list[float]:
    out = []
    for data in queries:
        started = time.perf_counter()
        call(data)
        out.append(1000 * (time.perf_counter() - started))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--rounds", type=int, default=4, help="each bundled photo indexed this many times (4)")
    parser.add_argument("--batch", type=int, default=8, help="documents per _bulk request (8)")
    parser.add_argument(
        "--clients",
        type=int,
        default=8,
        help="_bulk requests at once (8: as many images in flight as lookalike ingest keeps)",
    )
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_pipeline.json")
    args = parser.parse_args(argv)
    stack.ensure_archive(DEFAULT_MODEL)
    photos = all_photos()
    docs = [(f"{name}-{round_}", data) for round_ in range(args.rounds) for name, data in photos.items()]
    queries = list(photos.values())
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        with stack.torchserve([DEFAULT_MODEL], MODEL_STORE, tmp / "ts") as server, \
                opensearch_node.throwaway_node("bench-ml", with_ml=True) as node:  # fmt: skip
            settings = Settings(opensearch_url=node.url, alias="bench-ours", ts_url=server.inference_url,
                                thumb_dir=tmp / "thumbs", home=tmp)  # fmt: skip
            client = opensearch_client.connect(settings)
            plan = Plan(server.inference_url, DEFAULT_MODEL)
            connector = Connector(client, plan, print)
            outcome = connector.apply()
            probe = ModelClient.from_settings(settings)
            dimension = probe.info().dimension
            probe.close()
            body = index_body_for(plan, opensearch_index.index_body(DEFAULT_MODEL, dimension, settings, "lucene"))
            ensure_index(connector, "bench-site", body, outcome)
            print(f"indexing {len(docs)} images through the ingest pipeline ...", flush=True)
            pipeline_s = bulk_through_pipeline(node.url, "bench-site", docs, args.batch, args.clients)
            print(f"indexing the same {len(docs)} images with lookalike ingest ...", flush=True)
            report = stack.ingest(settings, stack.photo_items(dict(docs), tmp / "photos", "photos", named=True))
            ours_s = report.seconds

            def through_pipeline(data: bytes) -> None:
                body = plan.query(base64.b64encode(data).decode("ascii"), 10)
                httpx.post(f"{node.url}/bench-site/_search", params={"search_pipeline": plan.search_pipeline},
                           json={**body, "_source": False}, timeout=60).raise_for_status()  # fmt: skip

            with process.ApiThread(settings) as api, httpx.Client(timeout=60) as http:

                def through_api(data: bytes) -> None:
                    http.post(f"{api.url}/search", params={"k": 10}, content=data,
                              headers={"Content-Type": "image/jpeg"}).raise_for_status()  # fmt: skip

                timed(through_pipeline, queries[:5]), timed(through_api, queries[:5])  # warm-up
                pipeline_ms, api_ms = timed(through_pipeline, queries), timed(through_api, queries)
    rows = {
        "ingest pipeline (_bulk)": {"images_per_s": len(docs) / pipeline_s, "seconds": pipeline_s},
        "lookalike ingest": {"images_per_s": len(docs) / ours_s, "seconds": ours_s},
        "search pipeline": {"p50_ms": statistics.median(pipeline_ms), "p95_ms": float(np.percentile(pipeline_ms, 95))},
        "POST /search": {"p50_ms": statistics.median(api_ms), "p95_ms": float(np.percentile(api_ms, 95))},
    }
    print(f"\n{len(docs)} images ({len(photos)} photos x {args.rounds}), Lite0, 2.19 node + ml-commons, one run:")
    for name in ("ingest pipeline (_bulk)", "lookalike ingest"):
        print(f"  {name:<26} {rows[name]['images_per_s']:>7.1f} images/s ({rows[name]['seconds']:.1f} s)")
    for name in ("search pipeline", "POST /search"):
        print(f"  {name:<26} p50 {rows[name]['p50_ms']:>6.1f} ms  p95 {rows[name]['p95_ms']:>6.1f} ms "
              f"({len(queries)} queries, k 10)")  # fmt: skip
    ratio_ingest = rows["ingest pipeline (_bulk)"]["images_per_s"] / rows["lookalike ingest"]["images_per_s"]
    ratio_search = rows["search pipeline"]["p50_ms"] / rows["POST /search"]["p50_ms"]
    print(f"pipeline / ours: ingest x{ratio_ingest:.2f}, search p50 x{ratio_search:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "images": len(docs), "queries": len(queries), "batch": args.batch,
                                    "clients": args.clients, "ratio_ingest": ratio_ingest,
                                    "ratio_search_p50": ratio_search}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
