"""`lookalike loadtest` (`make loadtest`): start what is not running, run a bounded headless Locust
test with loadtest/locustfile.py, print the summary.

    lookalike loadtest --shape ramp -u 8 -t 60s      # extra args go to locust
    lookalike loadtest --workers 2 --shape soak -u 8 -t 10m   # a master and 2 worker processes
    lookalike loadtest --ui                          # web UI on 127.0.0.1:8089
    lookalike loadtest --api http://10.0.0.5:8000 --model-server http://10.0.0.6:8080 --shape steps -u 24 -t 7m
                                                     # a running deployment: nothing is started here
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from lookalike.demo import ensure_stack
from lookalike.ports import free_port
from lookalike.resources import asset
from lookalike.settings import REPORTS_DIR, Settings

LOCUSTFILE = asset("loadtest", "locustfile.py")
REPORTS = REPORTS_DIR / "loadtest"


def summary(stats_csv: Path) -> str:
    """The Aggregated row of Locust's stats CSV: requests/s, p50/p95/p99, failures."""
    with stats_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    lines = [f"{'request':<28} {'reqs':>6} {'fails':>6} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}"]
    for row in rows:
        lines.append(f"{row['Name']:<28} {row['Request Count']:>6} {row['Failure Count']:>6} "
                     f"{float(row['Requests/s']):>7.2f} {row['50%']:>7} {row['95%']:>7} {row['99%']:>7}")  # fmt: skip
    return "\n".join(lines)


def locust_command(api: str, ts_url: str, model: str) -> list[str]:
    """locust with our locustfile against the API at `api` (EmbedUser against TorchServe at `ts_url`)."""
    return [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "-H", api,
            "--ts-host", ts_url.split(",")[0], "--ts-model", model]  # fmt: skip


def run_headless(cmd: list[str], argv: list[str], prefix: Path, html: Path, workers: int = 0) -> int:
    """A bounded headless run writing CSV and HTML reports; with `workers`, Locust's distributed
    mode on this machine: one master (the shape, the thresholds, the reports) and that many worker
    processes generating the load. Locust's exit code: 1 when a threshold broke."""
    common = ["--headless", "--csv", str(prefix), "--html", str(html), "--only-summary", *argv]
    if not workers:
        return subprocess.call([*cmd, *common])
    port = free_port()
    helpers = [subprocess.Popen([*cmd, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(workers)]  # fmt: skip
    try:
        return subprocess.call([*cmd, *common, "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                                str(port), "--expect-workers", str(workers)])  # fmt: skip
    finally:
        for helper in helpers:
            try:
                helper.wait(timeout=15)  # workers quit when the master does
            except subprocess.TimeoutExpired:
                helper.kill()


def option(argv: list[str], name: str) -> str | None:
    """The value after `name` in `argv` (ours, not Locust's), or None."""
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):  # Locust's options (ours included), without starting anything
        return subprocess.call([str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "--help"])
    workers = 0
    if "--workers" in argv:  # ours: Locust's distributed mode on this machine
        at = argv.index("--workers")
        workers, argv = int(argv[at + 1]), argv[:at] + argv[at + 2 :]
    api, model_server = option(argv, "--api"), option(argv, "--model-server")
    argv = [arg for i, arg in enumerate(argv) if arg not in ("--api", "--model-server")
            and (i == 0 or argv[i - 1] not in ("--api", "--model-server"))]  # fmt: skip
    settings = Settings.from_env() if api else ensure_stack()
    api = api or f"http://{settings.api_host}:{settings.api_port}"
    REPORTS.mkdir(parents=True, exist_ok=True)
    cmd = locust_command(api, model_server or settings.ts_url, settings.model)
    if "--ui" in argv:
        argv = [arg for arg in argv if arg != "--ui"]
        print("Locust web UI: http://127.0.0.1:8089 (Ctrl-C to stop)")
        return subprocess.call([*cmd, "--web-host", "127.0.0.1", *argv])
    prefix = REPORTS / "lookalike"
    html = REPORTS / "report.html"
    code = run_headless(cmd, argv or ["--shape", "ramp", "-u", "8", "-t", "60s"], prefix, html, workers)
    print("\n" + summary(Path(f"{prefix}_stats.csv")))
    where = f" ({workers} worker processes)" if workers else ""
    print(f"\nreports{where}: {html} and {prefix}_*.csv; thresholds {'met' if code == 0 else 'BROKEN (exit code 1)'}")
    return code
