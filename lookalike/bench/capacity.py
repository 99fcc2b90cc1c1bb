"""Capacity table: searches/s through the whole stack for TorchServe worker / batch / delay settings.

Each row is the same locustfile (SearchUser only, constant load) against the local stack, at
several user counts; "searches/s at p95 <= 1 s" is the best throughput whose p95 stayed under a
second. CPU seconds per process (TorchServe workers, Java frontend, API, Locust) show which stage
saturates. ResNet50 runs with random weights (same speed as the real ones).

    lookalike bench capacity --seconds 20
"""

from __future__ import annotations

import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from lookalike import bench, ports, stack
from lookalike.api import process
from lookalike.loadtest.runner import LOCUSTFILE
from lookalike.photos import all_photos
from lookalike.serving import archive
from lookalike.serving.torchserve import PORT_KEYS
from lookalike.settings import REPORTS_DIR, Settings

# (workers, torch threads per worker, batchSize, maxBatchDelay ms)
CONFIGS = [(1, 0, 1, 5), (1, 0, 4, 20), (1, 0, 8, 20), (1, 0, 8, 100), (2, 1, 4, 20)]


def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    totals = {}
    for name, procs in processes.items():
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        totals[name] = total
    return totals


def run_level(api: str, users: int, seconds: int, out: Path, processes) -> dict:
    prefix = out / f"u{users}"
    before = cpu_seconds(processes)
    cmd = [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "SearchUser",
           "--headless", "-H", api, "--shape", "soak", "-u", str(users), "-t", f"{seconds}s",
           "--csv", str(prefix), "--only-summary", "--max-p95-ms", "1e9"]  # fmt: skip
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = cpu_seconds(processes)
    done = resource.getrusage(resource.RUSAGE_CHILDREN)  # the finished locust process
    before["locust"], after["locust"] = 0.0, (done.ru_utime - children.ru_utime) + (done.ru_stime - children.ru_stime)
    elapsed = time.monotonic() - started
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "POST /search")
    return {"users": users, "rps": float(row["Requests/s"]), "p50_ms": float(row["50%"]),
            "p95_ms": float(row["95%"]), "failures": int(row["Failure Count"]),
            "cpu_share": {k: round((after.get(k, 0) - before.get(k, 0)) / elapsed, 2) for k in after}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = bench.parser(__name__, __doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", default="1,2,4,8")
    parser.add_argument("--only", help="run only this config, e.g. w2b4d20")
    parser.add_argument("--out", type=Path, default=REPORTS_DIR / "capacity.json")
    args = parser.parse_args(argv)
    levels = [int(u) for u in args.users.split(",")]
    photos = all_photos()
    rows = []
    with tempfile.TemporaryDirectory(prefix="lookalike-capacity-") as tmp_name:
        tmp = Path(tmp_name)
        for workers, threads, batch, delay in CONFIGS:
            name = f"w{workers}b{batch}d{delay}"
            if args.only and name != args.only:
                continue
            archive.build("resnet50", tmp / "store", name=name, random_weights=True,
                          overrides={"minWorkers": workers, "maxWorkers": workers, "batchSize": batch,
                                     "maxBatchDelay": delay}, handler_overrides={"threads": threads})  # fmt: skip
            ts = stack.start_torchserve([name], tmp / "store", tmp / f"ts-{name}", ports.free_ports(PORT_KEYS))
            api_dir = tmp / f"api-{name}"
            try:
                settings = Settings(ts_url=ts.inference_url, model=name, data_dir=tmp / "index",
                                    api_port=ports.free_port())  # fmt: skip
                stack.ingest(settings, stack.photo_items(photos, tmp / "photos"))
                api = process.start_api(settings, api_dir)
                java = psutil.Process(ts.pid())
                processes = {"torchserve_workers": [p for p in java.children(recursive=True)], "java": [java],
                             "api": [psutil.Process(process.api_pid(api_dir / "api.pid"))]}  # fmt: skip
                out = tmp / f"locust-{name}"
                out.mkdir()
                results = [run_level(api, users, args.seconds, out, processes) for users in levels]
            finally:
                process.stop_api(api_dir / "api.pid")
                ts.stop()
            ok = [r for r in results if r["p95_ms"] <= 1000 and r["failures"] == 0]
            best = max(ok, key=lambda r: r["rps"]) if ok else None
            row = {"config": name, "workers": workers, "threads": threads, "batch": batch, "delay_ms": delay,
                   "levels": results, "searches_per_s_p95_le_1s": best["rps"] if best else 0.0,
                   "at_users": best["users"] if best else None,
                   "max_rps": max(r["rps"] for r in results)}  # fmt: skip
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "levels"}), flush=True)
            for r in results:
                print(f"   u={r['users']}: {r['rps']:.2f}/s p50 {r['p50_ms']:.0f} p95 {r['p95_ms']:.0f} ms "
                      f"cpu {r['cpu_share']}", flush=True)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"\n{'workers':>7} {'threads':>7} {'batch':>5} {'delay':>5}  {'searches/s @p95<=1s':>19}  {'users':>5}  "
          f"{'max searches/s':>14}")  # fmt: skip
    for row in rows:
        print(f"{row['workers']:>7} {row['threads'] or 'all':>7} {row['batch']:>5} {row['delay_ms']:>5}  "
              f"{row['searches_per_s_p95_le_1s']:>19.2f}  {row['at_users']!s:>5}  {row['max_rps']:>14.2f}")  # fmt: skip
    print(f"JSON: {args.out}")
    return 0
