"""Soak: measure the stack's capacity, then hold 80 % of it for ten minutes and watch memory.

The stack is the default one (`make demo`'s): TorchServe serving EfficientNet-Lite0, the
bundled photos ingested into the embedded index, the API as its own process. Capacity is the
search-by-image rate (loadtest/locustfile.py, SearchUser) that Locust reaches flat out with
--users users for --probe seconds. The soak then paces the same users at --fraction of that
rate (open loop: --rate) for --minutes, from one Locust process like the capacity run (or a
master with --workers worker processes: on 2 cores they take CPU from the stack they measure).
Resident memory of TorchServe's frontend (Java), its workers, and the API process (which holds
the embedded index) is sampled every 15 s. Prints a table, writes JSON.

    lookalike bench soak --minutes 10 --fraction 0.8
"""

from __future__ import annotations

import contextlib
import csv
import json
import tempfile
import threading
import time
from pathlib import Path

import psutil

from lookalike import bench, ports, stack
from lookalike.api.process import api_pid, start_api, stop_api
from lookalike.bench.capacity import cpu_seconds
from lookalike.loadtest.runner import locust_command, run_headless
from lookalike.photos import all_photos
from lookalike.serving.torchserve import PORT_KEYS
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, REPORTS_DIR, Settings


def locust_totals(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {"requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]), "p50_ms": float(row["50%"]), "p95_ms": float(row["95%"]),
            "p99_ms": float(row["99%"])}  # fmt: skip


class MemoryWatch(threading.Thread):
    """Samples the resident memory (MB) of each named group of processes every `every` seconds."""

    def __init__(self, groups, every: float = 15.0) -> None:
        super().__init__(daemon=True)
        self.groups, self.every, self.stop_event = groups, every, threading.Event()
        self.samples: list[dict] = []

    def sample(self) -> dict:
        """Resident MB per group (`<group>_mb`) and CPU seconds used so far (`<group>_cpu_s`)."""
        row: dict = {"t": time.monotonic()}
        groups = self.groups()
        for name, cpu in cpu_seconds(groups).items():
            rss = 0.0
            for process in groups[name]:
                with contextlib.suppress(psutil.Error):  # a worker being replaced
                    rss += process.memory_info().rss / 2**20
            row[f"{name}_mb"], row[f"{name}_cpu_s"] = rss, cpu
        return row

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.samples.append(self.sample())
            self.stop_event.wait(self.every)

    def stop(self) -> list[dict]:
        self.stop_event.set()
        self.join()
        self.samples.append(self.sample())
        start = self.samples[0]["t"]
        return [{**s, "t": round(s["t"] - start, 1)} for s in self.samples]


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fraction", type=float, default=0.8, help="of the measured capacity")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--probe", type=int, default=60, help="seconds of the flat-out capacity run")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="Locust worker processes for the soak (0: one local process, as the capacity run)",
    )
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "soak.json")
    args = parser.parse_args(argv)

    stack.ensure_archive(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory(prefix="lookalike-soak-") as tmp_name:
        tmp = Path(tmp_name)
        ts = stack.start_torchserve([DEFAULT_MODEL], MODEL_STORE, tmp / "ts", ports.free_ports(PORT_KEYS))
        api_dir = tmp / "api"
        try:
            settings = Settings(ts_url=ts.inference_url, data_dir=tmp / "index", api_port=ports.free_port())
            stack.ingest(settings, stack.photo_items(all_photos(), tmp / "photos"))
            api = start_api(settings, api_dir)
            java, api_process = psutil.Process(ts.pid()), psutil.Process(api_pid(api_dir / "api.pid"))

            def groups() -> dict[str, list[psutil.Process]]:
                return {"torchserve_frontend": [java], "torchserve_workers": java.children(recursive=True),
                        "api_and_index": [api_process]}  # fmt: skip

            cmd = [*locust_command(api, ts.inference_url, DEFAULT_MODEL), "SearchUser"]
            print(f"capacity: {args.users} users flat out for {args.probe} s (after 15 s of warm-up) ...", flush=True)
            users = ["-u", str(args.users), "-r", str(args.users)]  # all at once: Locust spawns 1/s by default
            run_headless(cmd, [*users, "-t", "15s", "--max-p95-ms", "1e9"], tmp / "warm",
                         tmp / "warm.html")  # fmt: skip
            probe = tmp / "probe"
            run_headless(cmd, [*users, "-t", f"{args.probe}s", "--max-p95-ms", "1e9"], probe,
                         tmp / "probe.html")  # fmt: skip
            capacity = locust_totals(probe)
            rate = args.fraction * capacity["rps"]
            print(f"capacity {capacity['rps']:.1f} searches/s; soaking at {rate:.1f}/s for {args.minutes:g} min "
                  f"({args.workers} Locust workers) ...", flush=True)  # fmt: skip
            watch = MemoryWatch(groups)
            watch.start()
            soak = tmp / "soak"
            code = run_headless(cmd, [*users, "-t", f"{int(args.minutes * 60)}s", "--rate", str(rate),
                                      "--max-fail-ratio", "0", "--max-p95-ms", "1e9"], soak, tmp / "soak.html",
                                workers=args.workers)  # fmt: skip
            samples = watch.stop()
            result = locust_totals(soak)
        finally:
            stop_api(api_dir / "api.pid")
            ts.stop()

    first = next((s for s in samples if s["t"] >= 60), samples[0])  # after a minute of warm-up
    last = samples[-1]
    names = [key[:-3] for key in samples[0] if key.endswith("_mb")]
    print(f"\ncapacity {capacity['rps']:.1f} searches/s (p50 {capacity['p50_ms']:.0f} ms); soak at "
          f"{args.fraction:.0%} = {rate:.1f}/s for {args.minutes:g} min: {result['requests']:,} requests, "
          f"{result['failures']} failed, {result['rps']:.1f}/s, p50 {result['p50_ms']:.0f} ms, "
          f"p95 {result['p95_ms']:.0f} ms; Locust exit code {code}")  # fmt: skip
    seconds = samples[-1]["t"] - samples[0]["t"]
    print(f"{'process':<20} {'RSS MB at ' + str(first['t']) + ' s':>16} {'at end':>8} {'max':>8} "
          f"{'cores':>6} {'CPU ms/search':>13}")  # fmt: skip
    for name in names:
        cpu = samples[-1][f"{name}_cpu_s"] - samples[0][f"{name}_cpu_s"]
        print(f"{name:<20} {first[name + '_mb']:>16.0f} {last[name + '_mb']:>8.0f} "
              f"{max(s[name + '_mb'] for s in samples):>8.0f} {cpu / seconds:>6.2f} "
              f"{1000 * cpu / max(1, result['requests']):>13.1f}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": {k: str(v) for k, v in vars(args).items()}, "capacity": capacity,
                                    "rate": rate, "soak": result, "locust_exit": code, "memory": samples},
                                   indent=2))  # fmt: skip
    print(f"JSON: {args.out}")
    return 0 if code == 0 and result["failures"] == 0 else 1
