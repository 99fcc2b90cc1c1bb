"""Search latency, cosine only (verify=false) against verified (the default), through the API, in one run.

TorchServe serves EfficientNet-Lite0; an embedded index holds two thirds of the bundled photos; the
API runs in this process. Queries are seeded heavy crops: of indexed photos (`copy`: the query has a
copy in the index) and of the photos left out (`none`: a "similar products" search, nothing to find).
The feature store is warmed first (each indexed photo's features made once, as at ingest).

Each repeat runs every query cosine-only and verified, alternating which goes first, one at a time
(concurrency 1) and then at the concurrency where cosine-only search reaches 80 % of its capacity
(found first: searches/s at 1 to 16 clients, every query twice). Figures are medians over the repeats.

    lookalike bench verify --repeats 3
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from lookalike import bench, stack
from lookalike.api import process
from lookalike.copies import heavy_crop
from lookalike.photos import all_photos
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings

MODES = ("cosine", "verified")
CLIENTS = (1, 2, 4, 6, 8, 12, 16)  # concurrencies tried to find cosine-only search's capacity


def latencies(url: str, queries: list[bytes], verify: bool, clients: int = 1) -> tuple[list[float], float]:
    """(milliseconds of each search, searches/s) with `clients` sending the queries at once."""

    def send(part: list[bytes]) -> list[float]:
        out = []
        with httpx.Client(timeout=120) as client:
            for data in part:
                started = time.perf_counter()
                response = client.post(f"{url}/search", params={"k": 10, "verify": str(verify).lower()},
                                       content=data, headers={"Content-Type": "image/jpeg"})  # fmt: skip
                response.raise_for_status()
                out.append(1000 * (time.perf_counter() - started))
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        parts = list(pool.map(send, [queries[at::clients] for at in range(clients)]))
    return [ms for part in parts for ms in part], len(queries) / (time.perf_counter() - started)


def capacity(url: str, queries: list[bytes]) -> tuple[int, dict[int, float]]:
    """(the fewest clients at which cosine-only search reaches 80 % of its best searches/s, searches/s per clients)."""
    rates = {clients: latencies(url, queries * 2, False, clients)[1] for clients in CLIENTS}
    best = max(rates.values())
    return min(clients for clients, rate in rates.items() if rate >= 0.8 * best), rates


def summary(rows: list[dict]) -> dict:
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_verify.json")
    args = parser.parse_args(argv)
    stack.ensure_archive(DEFAULT_MODEL)
    photos = all_photos()
    names = sorted(photos)
    indexed = {name: photos[name] for at, name in enumerate(names) if at % 3 != 2}
    rng = np.random.default_rng(0)
    queries = {"copy": [heavy_crop(photos[name], rng) for name in names if name in indexed],
               "none": [heavy_crop(photos[name], rng) for name in names if name not in indexed]}  # fmt: skip
    every = queries["copy"] + queries["none"]
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-verify-") as tmp_name:
        tmp = Path(tmp_name)
        with stack.torchserve([DEFAULT_MODEL], MODEL_STORE, tmp / "ts") as server:
            settings = Settings(ts_url=server.inference_url, data_dir=tmp / "index", thumb_dir=tmp / "thumbs",
                                home=tmp)  # fmt: skip
            stack.ingest(settings, stack.photo_items(indexed, tmp / "photos", "photos", named=True))
            with process.ApiThread(settings) as api:
                latencies(api.url, every[:8], False)  # warm-up
                latencies(api.url, queries["copy"], True)  # every indexed photo's features made once
                busy, rates = capacity(api.url, every)
                print("cosine-only searches/s by clients: " + ", ".join(f"{c}: {r:.1f}" for c, r in rates.items())
                      + f"; 80 % of capacity at {busy} clients", flush=True)  # fmt: skip
                for repeat in range(args.repeats):
                    for clients in (1, busy):
                        for mode in MODES if repeat % 2 == 0 else MODES[::-1]:
                            for kind, sent in queries.items():
                                ms, rate = latencies(api.url, sent * (1 if clients == 1 else 2), mode == "verified",
                                                     clients)  # fmt: skip
                                row = {"p50": statistics.median(ms), "p95": float(np.percentile(ms, 95)),
                                       "searches_s": rate}  # fmt: skip
                                runs.setdefault(f"{kind} c{clients} {mode}", []).append(row)
                                print(f"  repeat {repeat + 1}: {kind:<4} c{clients} {mode:<8} p50 {row['p50']:.0f} ms, "
                                      f"p95 {row['p95']:.0f} ms, {rate:.1f}/s", flush=True)  # fmt: skip
    table = {name: summary(rows) for name, rows in runs.items()}
    print(
        f"\nSearch latency, k 10, {len(queries['copy'])} queries with a copy indexed and {len(queries['none'])} "
        f"without, medians of {args.repeats} runs; concurrency 1 and {busy} (80 % of cosine-only capacity):"
    )
    print(f"{'queries':<8} {'clients':>7} {'cosine p50':>11} {'p95':>6} {'verified p50':>13} {'p95':>6} "
          f"{'ratio p50':>10} {'ratio p95':>10}")  # fmt: skip
    ratios = {}
    for kind in queries:
        for clients in (1, busy):
            plain, judged = table[f"{kind} c{clients} cosine"], table[f"{kind} c{clients} verified"]
            ratio = {"p50": judged["p50"] / plain["p50"], "p95": judged["p95"] / plain["p95"]}
            ratios[f"{kind} c{clients}"] = ratio
            print(f"{kind:<8} {clients:>7} {plain['p50']:>11.0f} {plain['p95']:>6.0f} {judged['p50']:>13.0f} "
                  f"{judged['p95']:>6.0f} {ratio['p50']:>10.2f} {ratio['p95']:>10.2f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"capacity": rates, "busy_clients": busy, "runs": runs, "summary": table,
                                    "ratios": ratios}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
