"""What a step-load run records: users over time, every request, and the servers' signal gauges.

The locustfile starts it for `--shape steps` (a local runner: the requests are seen here); every
second it reads each /metrics page in `urls` and keeps the `lookalike_*` gauges (one value, no
labels). At the end `finish` writes the steps, the knee and the verdict (lookalike.loadtest.knee).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from lookalike.loadtest import knee

SCRAPE_S = 1.0


def gauges(text: str) -> dict[str, float]:
    """The unlabelled `lookalike_*` samples of a Prometheus page."""
    found = {}
    for line in text.splitlines():
        if line.startswith("lookalike_") and "{" not in line:
            name, _, value = line.partition(" ")
            try:
                found[name] = float(value)
            except ValueError:
                continue
    return found


class Recorder:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.users: list[tuple[float, int]] = []
        self.requests: list[tuple[float, float, bool]] = []
        self.scrapes: list[tuple[float, dict[str, float]]] = []
        self.running = False

    def request(self, response_time_ms: float, failed: bool) -> None:
        if self.running:
            self.requests.append((time.time(), response_time_ms, failed))

    def user_count(self, users: int) -> None:
        if not self.users or self.users[-1][1] != users:
            self.users.append((time.time(), users))

    def scrape(self, get) -> None:
        """Read the pages until stopped; `get(url)` returns a page's text (gevent-friendly)."""
        self.running = True
        while self.running:
            values: dict[str, float] = {}
            for url in self.urls:
                try:
                    values.update(gauges(get(url)))
                except Exception:  # a page that does not answer this second: the next one may
                    continue
            self.scrapes.append((time.time(), values))
            time.sleep(SCRAPE_S)

    def finish(self, signal: str, threshold: float, out: Path) -> str:
        """Stop; write the report to `out`; the table and the verdict as text."""
        self.running = False
        found = knee.steps(self.users, self.requests, self.scrapes, time.time())
        verdict = knee.verdict(found, signal, threshold)
        names = sorted({name for step in found for name in step.signals})
        shown = [name for name in names if name.endswith(("queue_ratio", "waiting_mean", "in_flight_mean"))]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**knee.report(found, [verdict]), "urls": self.urls}, indent=2))
        timely = "at or before the knee" if verdict["crossed_at_or_before_knee"] else "LATE"
        said = (f"{signal} >= {threshold}: first at step {verdict['crossed_step']}, knee at step "
                f"{verdict['knee_step']} -> {timely}; after the load fell: "
                f"{'below again' if verdict['fell_back'] else 'STILL ABOVE'}")  # fmt: skip
        return f"{knee.table(found, shown)}\n{said}\nreport: {out}"
