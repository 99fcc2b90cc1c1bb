"""Searches/s through the API with one TorchServe instance vs two behind it (LOOKALIKE_TS_URL
with two URLs: least outstanding requests), on this machine, in one run.

Each layout serves the default archive (its model-config: two workers sharing the cores) per
instance; 8 client threads POST the coffee photo to /search for --seconds; three rounds,
alternating layouts, median reported. On a 2-core machine two instances share the same two
cores, so this measures the balancer's overhead and fairness here, not the scale-out a second
host gives.

    lookalike bench instances --seconds 20
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

from lookalike import bench, stack
from lookalike.api import process
from lookalike.photos import subject_photos
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings


def load(url: str, image: bytes, seconds: float, clients: int) -> float:
    """Searches/s sustained by `clients` threads for `seconds`; every answer must be 200."""
    deadline = time.monotonic() + seconds

    def worker(_: int) -> int:
        done = 0
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < deadline:
                response = http.post(f"{url}/search?k=10", content=image, headers={"Content-Type": "image/jpeg"})
                response.raise_for_status()
                done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as threads:
        total = sum(threads.map(worker, range(clients)))
    return total / (time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "bench_instances.json")
    args = parser.parse_args(argv)
    stack.ensure_archive(DEFAULT_MODEL)
    photos = subject_photos()
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-instances-") as tmp_name, ExitStack() as running:
        tmp = Path(tmp_name)
        servers = [running.enter_context(stack.torchserve([DEFAULT_MODEL], MODEL_STORE, tmp / f"ts{i}"))
                   for i in range(2)]  # fmt: skip
        data_dir = tmp / "index"
        stack.ingest(Settings(ts_url=servers[0].inference_url, data_dir=data_dir),
                     stack.photo_items(photos, tmp / "photos", "subjects", named=True))  # fmt: skip
        for round_ in range(args.rounds):
            for count in (1, 2) if round_ % 2 == 0 else (2, 1):
                urls = ",".join(server.inference_url for server in servers[:count])
                settings = Settings(ts_url=urls, data_dir=data_dir, thumb_dir=tmp / "thumbs")
                with process.ApiThread(settings) as api:
                    load(api.url, photos["coffee"], 3, args.clients)  # warm-up
                    rate = load(api.url, photos["coffee"], args.seconds, args.clients)
                results[count].append(rate)
                print(f"  round {round_ + 1}: {count} instance(s) {rate:.1f} searches/s", flush=True)
    median = {count: statistics.median(rates) for count, rates in results.items()}
    print(f"\n{'instances':>9}  {'searches/s (median)':>20}  runs")
    for count in (1, 2):
        print(f"{count:>9}  {median[count]:>20.1f}  {', '.join(f'{r:.1f}' for r in results[count])}")
    print(f"ratio two/one: {median[2] / median[1]:.2f} (same 2 cores: overhead and fairness, not scale-out)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": vars(args) | {"out": str(args.out)}, "runs": results,
                                    "median": median}, indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
