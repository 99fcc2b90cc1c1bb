"""Search latency with and without verification, through the API, in one run.

TorchServe serves EfficientNet-Lite0; an embedded index holds the ~51 bundled photos; the API runs in
this process. The queries are seeded heavy crops of those photos (copies not in the index), sent
one at a time: each repeat runs every query plain (POST /search?k=10) and verified
(&verify=true, LOOKALIKE_VERIFY_CANDIDATES nearest judged), alternating which goes first. The
feature store is warmed first (each indexed photo's features made once, as after its first
verified search); a cold candidate costs one extraction more (`extract ms` in the table).

    lookalike bench verify --repeats 3
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from lookalike import bench, stack
from lookalike.api import process
from lookalike.copies import heavy_crop
from lookalike.photos import all_photos
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings
from lookalike.verify import extract


def latencies(url: str, queries: list[bytes], verify: bool) -> list[float]:
    """Milliseconds of each search, one after another."""
    out = []
    with httpx.Client(timeout=120) as client:
        for data in queries:
            started = time.perf_counter()
            response = client.post(f"{url}/search", params={"k": 10, "verify": str(verify).lower()},
                                   content=data, headers={"Content-Type": "image/jpeg"})  # fmt: skip
            response.raise_for_status()
            out.append(1000 * (time.perf_counter() - started))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_verify.json")
    args = parser.parse_args(argv)
    stack.ensure_archive(DEFAULT_MODEL)
    photos = all_photos()
    rng = np.random.default_rng(0)
    queries = [heavy_crop(data, rng) for data in photos.values()]
    extract_ms = []
    for data in list(photos.values())[:20]:
        started = time.perf_counter()
        extract(data)
        extract_ms.append(1000 * (time.perf_counter() - started))
    runs: dict[str, list[dict]] = {"plain": [], "verified": []}
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-verify-") as tmp_name:
        tmp = Path(tmp_name)
        with stack.torchserve([DEFAULT_MODEL], MODEL_STORE, tmp / "ts") as server:
            settings = Settings(ts_url=server.inference_url, data_dir=tmp / "index", thumb_dir=tmp / "thumbs",
                                home=tmp)  # fmt: skip
            stack.ingest(settings, stack.photo_items(photos, tmp / "photos", "photos", named=True))
            with process.ApiThread(settings) as api:
                latencies(api.url, queries[:5], False)  # warm-up
                latencies(api.url, queries, True)  # every indexed photo's features made once
                for repeat in range(args.repeats):
                    for mode in ("plain", "verified") if repeat % 2 == 0 else ("verified", "plain"):
                        ms = latencies(api.url, queries, mode == "verified")
                        row = {"p50": statistics.median(ms), "p95": float(np.percentile(ms, 95))}
                        runs[mode].append(row)
                        print(f"  repeat {repeat + 1}: {mode:<8} p50 {row['p50']:.0f} ms, p95 {row['p95']:.0f} ms",
                              flush=True)  # fmt: skip
    summary = {mode: {key: statistics.median(row[key] for row in rows) for key in ("p50", "p95")}
               for mode, rows in runs.items()}  # fmt: skip
    ratio = summary["verified"]["p50"] / summary["plain"]["p50"]
    print(f"\nSearch latency, {len(queries)} heavy-crop queries one at a time, k 10, medians of {args.repeats} runs:")
    print(f"{'mode':<10} {'p50 ms':>8} {'p95 ms':>8}")
    for mode, row in summary.items():
        print(f"{mode:<10} {row['p50']:>8.0f} {row['p95']:>8.0f}")
    print(f"verified / plain p50: {ratio:.2f}; extract ms per photo (a cold candidate): "
          f"{statistics.median(extract_ms):.0f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "summary": summary, "ratio_p50": ratio,
                                    "extract_ms": statistics.median(extract_ms)}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
