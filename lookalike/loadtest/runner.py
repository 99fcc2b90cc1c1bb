"""`lookalike loadtest` (`make loadtest`): start what is not running, run a bounded headless Locust
test with loadtest/locustfile.py, print the summary.

    lookalike loadtest --shape ramp -u 8 -t 60s      # extra args go to locust
    lookalike loadtest --ui                          # web UI on 127.0.0.1:8089
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

from lookalike.settings import REPO, REPORTS_DIR

LOCUSTFILE = REPO / "loadtest" / "locustfile.py"
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


def main(argv: list[str]) -> int:
    from lookalike.demo import ensure_stack

    if {"-h", "--help"} & set(argv):  # Locust's options (ours included), without starting anything
        return subprocess.call([str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "--help"])
    settings = ensure_stack()
    api = f"http://{settings.api_host}:{settings.api_port}"
    REPORTS.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "-H", api,
           "--ts-host", settings.ts_url, "--ts-model", settings.model]  # fmt: skip
    if "--ui" in argv:
        argv = [arg for arg in argv if arg != "--ui"]
        print("Locust web UI: http://127.0.0.1:8089 (Ctrl-C to stop)")
        return subprocess.call([*cmd, "--web-host", "127.0.0.1", *argv], cwd=REPO)
    prefix = REPORTS / "lookalike"
    html = REPORTS / "report.html"
    code = subprocess.call([*cmd, "--headless", "--csv", str(prefix), "--html", str(html), "--only-summary",
                            *(argv or ["--shape", "ramp", "-u", "8", "-t", "60s"])], cwd=REPO)  # fmt: skip
    print("\n" + summary(Path(f"{prefix}_stats.csv")))
    print(f"\nreports: {html} and {prefix}_*.csv; thresholds {'met' if code == 0 else 'BROKEN (exit code 1)'}")
    return code
