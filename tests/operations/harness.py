"""What the operations tests run: real model-server replicas (the gate before TorchServe, as the
model-server image runs it), real API processes, the balancer, and Locust at a fixed rate writing
a timeline that is split into phases (before a change, during it) afterwards.

Every process listens on 127.0.0.1 on a free port and is stopped by the test."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lookalike.api.process import settings_environment
from lookalike.balancer import Balancer, handler_for
from lookalike.loadtest.runner import LOCUSTFILE
from lookalike.ports import free_port
from lookalike.serving.httpserver import Server
from lookalike.settings import REPORTS_DIR, Settings

GRACE_S = 2.0  # each replica's drain grace here (the default 5 s makes every step longer)


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        if process.poll() is not None:
            raise AssertionError(f"{url} exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} not ready after {timeout:.0f} s")
        time.sleep(0.3)


class Replica:
    """A process with /ready that drains on SIGTERM and exits 0."""

    url: str
    process: subprocess.Popen

    def wait_ready(self) -> Replica:
        wait_ready(self.url, self.process)
        return self

    def drain(self, timeout: float = 90.0) -> int:
        """SIGTERM, then its exit code once drained."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def stop_tree(marker: str) -> None:
    """SIGKILL every process whose command line names `marker`, and their children (a TorchServe
    the gate started: `torchserve --start` detaches its frontend, so it is no child of the gate)."""
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(proc.info["cmdline"] or []):
                for child in [*proc.children(recursive=True), proc]:
                    child.kill()
        except psutil.Error:
            pass


class ModelServer(Replica):
    """`python -m lookalike.serving.gate` with TorchServe on loopback behind it, serving `models`
    (each <name>.mar in `store`)."""

    def __init__(self, store: Path, run_dir: Path, models: str = "efficientnet_lite0", port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "LOOKALIKE_DRAIN_GRACE": str(GRACE_S), "LOOKALIKE_DRAIN_TIMEOUT": "60"}
        self.log = (run_dir / "gate.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lookalike.serving.gate", "--host", "127.0.0.1", "--port", str(self.port),
             "--models", models, "--store", str(store), "--run-dir", str(run_dir), "--ts-port", "0"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def kill(self) -> None:
        """Stop it and its TorchServe whatever state it is in: SIGTERM (the gate drains and stops
        TorchServe), then SIGKILL and whatever TorchServe left running."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=GRACE_S + 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        stop_tree(str(self.run_dir))

    def served(self) -> int:
        """Predictions this replica's TorchServe answered (the gate's counter)."""
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith("lookalike_model_requests_total "):
                return int(float(line.split()[1]))
        raise AssertionError("no lookalike_model_requests_total on the gate's /metrics")


class Api(Replica):
    """`python -m lookalike.api` (what the API image runs) with `settings`, on `port`."""

    def __init__(self, settings: Settings, port: int, log: Path):
        self.settings = settings.replace(api_host="127.0.0.1", api_port=port, drain_grace=GRACE_S)
        self.url = f"http://127.0.0.1:{port}"
        self.log = log.open("ab")
        env = {**os.environ, **settings_environment(self.settings)}
        self.process = subprocess.Popen([sys.executable, "-m", "lookalike.api"], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT)  # fmt: skip

    def restart(self) -> Api:
        """Drain (exit 0 expected), then the same replica again at the same address, ready."""
        code = self.drain()
        assert code == 0, f"the API at {self.url} exited {code} on SIGTERM"
        return Api(self.settings, self.settings.api_port, Path(self.log.name)).wait_ready()


@contextlib.contextmanager
def balanced(urls: list[str]) -> Iterator[tuple[str, Balancer]]:
    """`lookalike balance` in this process before `urls`."""
    balancer = Balancer(urls, interval=0.5)
    httpd = Server(("127.0.0.1", 0), handler_for(balancer))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    threading.Thread(target=balancer.watch, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", balancer
    finally:
        balancer.stopping.set()
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Row:
    t: float
    ms: float
    ok: bool
    archive: str
    reason: str


@dataclass
class Load:
    """Locust at a fixed rate (SearchUser: POST /search with the bundled photos) against `host`,
    writing its timeline; phases are marked while it runs."""

    host: str
    workdir: Path
    rate: float = 2.0
    users: int = 4
    timeline: Path = field(init=False)
    phases: list[tuple[str, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.timeline = self.workdir / "timeline.csv"
        self.log = (self.workdir / "locust.log").open("ab")
        cmd = [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE), "-H", self.host, "--headless",
               "--shape", "soak", "-u", str(self.users), "-t", "1800s", "--rate", str(self.rate),
               "--timeline", str(self.timeline), "--only-summary", "--max-fail-ratio", "1", "SearchUser"]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir)

    def wait_rows(self, n: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.rows()) < n:
            assert self.process.poll() is None, "Locust exited"
            assert time.monotonic() < deadline, f"fewer than {n} requests after {timeout:.0f} s"
            time.sleep(0.5)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.time()
        yield
        self.phases.append((name, started, time.time()))

    def steady(self, name: str, seconds: float) -> None:
        with self.phase(name):
            time.sleep(seconds)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def rows(self) -> list[Row]:
        if not self.timeline.exists():
            return []
        with self.timeline.open(newline="") as handle:
            return [Row(float(r[0]), float(r[2]), r[3] == "1", r[4], r[5])
                    for r in csv.reader(handle) if len(r) >= 6]  # fmt: skip

    def report(self, name: str) -> dict:
        """Per phase: requests, failed, p50 and p95 (ms) of the requests that ended in it, and p95
        against the first phase's; printed as a table and written to reports/operations/NAME.json."""
        rows = self.rows()
        table = []
        for phase, start, end in self.phases:
            inside = [row for row in rows if start <= row.t < end]
            times = sorted(row.ms for row in inside)
            table.append({"phase": phase, "seconds": round(end - start, 1), "requests": len(inside),
                          "failed": sum(not row.ok for row in inside),
                          "p50_ms": round(statistics.median(times), 1) if times else None,
                          "p95_ms": round(percentile(times, 0.95), 1) if times else None,
                          "archives": sorted({row.archive for row in inside if row.archive})})  # fmt: skip
        base = table[0]["p95_ms"] if table else None
        for entry in table:
            entry["p95_vs_before"] = round(entry["p95_ms"] / base, 2) if base and entry["p95_ms"] else None
        doc = {"operation": name, "rate_per_s": self.rate, "requests": len(rows),
               "failed": sum(not row.ok for row in rows), "failures": [row.reason for row in rows if not row.ok][:20],
               "phases": table}  # fmt: skip
        out = REPORTS_DIR / "operations" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\n{name}: {doc['requests']} requests at {self.rate}/s, {doc['failed']} failed ({out})")
        print(f"{'phase':<34} {'s':>5} {'reqs':>5} {'fail':>4} {'p50 ms':>7} {'p95 ms':>7} {'p95 x':>6}  archives")
        for e in table:
            print(f"{e['phase']:<34} {e['seconds']:>5} {e['requests']:>5} {e['failed']:>4} {e['p50_ms']!s:>7} "
                  f"{e['p95_ms']!s:>7} {e['p95_vs_before']!s:>6}  {','.join(e['archives'])}")  # fmt: skip
        return doc


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]
