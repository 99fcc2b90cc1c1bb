"""The model server's front door: one small HTTP server before a TorchServe kept on loopback.

TorchServe is archived upstream (no more security patches), so in a container or a pod it never
faces the network: the gate starts it on loopback ports (lookalike.serving.torchserve) and is the
one process that listens outside. The gate

- forwards POST /predictions/<model> and GET /ping as they are, so our client needs nothing new;
  with a token (LOOKALIKE_TS_TOKEN) it checks the bearer key itself;
- answers the two probes apart: GET /live (the gate answers and TorchServe's frontend answers)
  and GET /ready (every model has a READY worker and answered a warm-up image, and the gate is
  not draining), each 200 or 503 with its reasons;
- exports the autoscaling signal (lookalike.serving.signal) on GET /metrics, before TorchServe's
  own metrics: predictions in flight, waiting for a worker (in flight beyond what the READY
  workers' batches hold), their windowed mean, and queue time over compute time (TorchServe's
  counters); plus the capacity, ready and draining;
- drains on SIGTERM: /ready turns 503 at once, predictions are still taken for `grace` seconds
  (a load balancer needs that long to stop sending), then new ones are refused with 503 while it
  waits for those in flight (at most `drain_timeout` s); then it stops TorchServe and exits 0.
  If TorchServe dies, the gate exits 1 so the container restarts.
- says so while it cannot take new work: every answer carries `X-Lookalike-Replica: draining`
  (after SIGTERM) or `starting` (TorchServe not up yet: predictions refused with 503), and our
  client (lookalike.serving.client) sends such a replica nothing new and moves a refused
  request to another at once.

It needs no web framework: it runs in the model-server image beside TorchServe.

    python -m lookalike.serving.gate --host 0.0.0.0 --port 8080 --models efficientnet_lite0
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import http.client
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

from lookalike.ports import free_ports
from lookalike.serving.endpoints import REPLICA_HEADER
from lookalike.serving.httpserver import Server
from lookalike.serving.signal import SAMPLE_S, WINDOW_S, Signal, render
from lookalike.serving.torchserve import PORT_KEYS, ServerError, TorchServe
from lookalike.settings import Settings

logger = logging.getLogger("lookalike.gate")
FORWARDED_HEADERS = ("Content-Type", "X-Lookalike-Regions")
COUNTER = re.compile(r"^(ts_queue_latency_microseconds|ts_inference_latency_microseconds)(?:\{[^}]*\})?\s+(\S+)$")
PREDICTION = re.compile(r"^/predictions/[A-Za-z0-9_.+-]+$")


def counters(text: str) -> tuple[float, float]:
    """(seconds queued, seconds computed) so far, summed over models, from TorchServe's metrics text.
    TorchServe's inference latency runs from a request's arrival to its answer, so it holds the
    queue time: computed = inference - queued."""
    total = {"ts_queue_latency_microseconds": 0.0, "ts_inference_latency_microseconds": 0.0}
    for line in text.splitlines():
        match = COUNTER.match(line.strip())
        if match:
            total[match.group(1)] += float(match.group(2))
    queued = total["ts_queue_latency_microseconds"] / 1e6
    return queued, max(0.0, total["ts_inference_latency_microseconds"] / 1e6 - queued)


def warm_image() -> bytes:
    """A small valid PNG with some structure: what each model embeds once before the gate is ready."""
    from PIL import Image  # the model-server image has Pillow (the handler decodes with it)

    image = Image.radial_gradient("L").convert("RGB").resize((224, 224))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Upstream:
    """The TorchServe behind the gate: its state as the monitor last read it."""

    def __init__(self, server: TorchServe) -> None:
        self.server = server
        self.host, self.port = "127.0.0.1", server.ports["inference"]
        self.capacity = 0  # READY workers x batch size, over the models
        self.problems: list[str] = ["starting"]
        self.warmed: set[str] = set()
        self.local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection to TorchServe's inference port."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        return conn

    def forward(self, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        for attempt in (0, 1):  # a kept-alive connection TorchServe closed is opened again once
            conn = self.connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.getheader("Content-Type", "application/json"), response.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def refresh(self) -> None:
        """Read each model's READY workers and batch size (management API, loopback)."""
        problems, capacity = [], 0
        for name in self.server.models:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.server.ports["management"], timeout=5)
                conn.request("GET", f"/models/{name}")
                response = conn.getresponse()
                doc = json.loads(response.read() or b"[]") if response.status == 200 else []
                conn.close()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                problems.append(f"{name}: TorchServe's management API does not answer ({exc!r})")
                continue
            model = doc[0] if doc else {}
            ready = sum(1 for worker in model.get("workers", []) if worker.get("status") == "READY")
            capacity += ready * int(model.get("batchSize") or 1)
            if not ready:
                problems.append(f"{name}: no READY worker")
            elif name not in self.warmed:
                problems.append(f"{name}: not warmed yet")
        self.capacity, self.problems = capacity, problems

    def warm(self) -> None:
        """Embed one image with each model that has a worker; a model is warm once that answers 200."""
        image = warm_image()
        for name in self.server.models:
            if name in self.warmed:
                continue
            try:
                status, _, body = self.forward("POST", f"/predictions/{name}", image,
                                               {"Content-Type": "application/octet-stream"})  # fmt: skip
            except OSError as exc:
                logger.info("warming %s: TorchServe unreachable (%r)", name, exc)
                continue
            if status == 200:
                self.warmed.add(name)
                logger.info("%s warmed", name)
            else:
                logger.warning("warming %s: %d %s", name, status, body[:200])

    def metrics(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.ports["metrics"], timeout=5)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode("utf-8", "replace")
        finally:
            conn.close()


class Gate:
    def __init__(self, upstream: Upstream, token: str | None = None, grace: float = 5.0,
                 drain_timeout: float = 60.0, window: float = WINDOW_S) -> None:  # fmt: skip
        self.upstream, self.token = upstream, token
        self.grace, self.drain_timeout = grace, drain_timeout
        self.signal = Signal(window)
        self.interval = 1.0  # seconds between reads of TorchServe's state and counters
        self.started = threading.Event()  # TorchServe answered with every model READY
        self.draining = threading.Event()
        self.refusing = threading.Event()  # set `grace` s into a drain: new predictions get 503
        self.stopping = threading.Event()
        self.served = 0  # predictions answered by TorchServe (any status), for the operator's eyes
        self.lock = threading.Lock()
        self.httpd: Server | None = None

    @property
    def state(self) -> str | None:
        """What the replica header says: "draining", "starting", or None (taking work)."""
        if self.draining.is_set():
            return "draining"
        return None if self.started.is_set() else "starting"

    @property
    def ready(self) -> bool:
        return not self.upstream.problems and not self.draining.is_set()

    def readiness(self) -> tuple[bool, dict]:
        problems = list(self.upstream.problems) + (["draining"] if self.draining.is_set() else [])
        return not problems, {"status": "ready" if not problems else "not ready", "problems": problems,
                              "capacity": self.upstream.capacity}  # fmt: skip

    def liveness(self) -> tuple[bool, dict]:
        if not self.started.is_set():
            return True, {"status": "starting"}  # alive: TorchServe is loading (ready says so)
        try:
            status, _, _ = self.upstream.forward("GET", "/ping", None, {})
        except OSError as exc:
            return False, {"status": "dead", "problem": f"TorchServe does not answer: {exc!r}"}
        return True, {"status": "alive", "torchserve_ping": status}

    def metrics_text(self) -> str:
        gauges = self.signal.gauges("lookalike_model")
        gauges += [
            ("lookalike_model_capacity", "Requests the READY workers' batches hold at once", self.upstream.capacity),
            ("lookalike_model_ready", "1 when /ready answers 200", float(self.ready)),
            ("lookalike_model_draining", "1 after SIGTERM, while in-flight requests finish",
             float(self.draining.is_set())),
        ]  # fmt: skip
        served = (
            "# HELP lookalike_model_requests_total Predictions TorchServe answered through this gate\n"
            f"# TYPE lookalike_model_requests_total counter\nlookalike_model_requests_total {self.served}\n"
        )
        try:
            upstream = self.upstream.metrics()
        except OSError as exc:
            upstream = f"# TorchServe's metrics unavailable: {exc!r}\n"
        return render(gauges) + served + upstream

    def authorised(self, header: str | None) -> bool:
        if not self.token:
            return True
        scheme, _, key = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), self.token.encode())

    def predict(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        self.signal.started()
        self._update_waiting()
        try:
            answer = self.upstream.forward("POST", path, body, headers)
            with self.lock:
                self.served += 1
            return answer
        finally:
            self.signal.finished()
            self._update_waiting()

    def _update_waiting(self) -> None:
        self.signal.set_waiting(self.signal.in_flight - self.upstream.capacity)

    # -- the background work: TorchServe's state, the signal's samples, the drain -------------
    def monitor(self, start_timeout: float = 300.0) -> None:
        try:
            self.upstream.server.start(timeout=start_timeout)  # returns once every model has a READY worker
        except ServerError as exc:
            logger.error("TorchServe did not start: %s", exc)
            os._exit(1)
        self.started.set()
        last_refresh = last_counters = 0.0
        while not self.stopping.is_set():
            now = time.monotonic()
            if now - last_refresh >= self.interval:
                last_refresh = now
                if self.upstream.server.pid() is None and not self.draining.is_set():
                    logger.error("TorchServe exited; the gate exits so the container restarts\n%s",
                                 self.upstream.server.log_tail())  # fmt: skip
                    os._exit(1)
                if len(self.upstream.warmed) < len(self.upstream.server.models):
                    self.upstream.warm()
                self.upstream.refresh()
                self._update_waiting()
            if now - last_counters >= self.interval:
                last_counters = now
                with contextlib.suppress(OSError):
                    self.signal.totals(*counters(self.upstream.metrics()), now=now)
            self.signal.sample(now)
            self.stopping.wait(SAMPLE_S)

    def drain(self) -> None:
        """Not ready at once; still serving for `grace` s; then wait for in-flight work; then stop."""
        logger.info("SIGTERM: not ready; serving %.0f s more, then draining %d in flight", self.grace,
                    self.signal.in_flight)  # fmt: skip
        self.draining.set()
        time.sleep(self.grace)
        self.refusing.set()
        deadline = time.monotonic() + self.drain_timeout
        while self.signal.in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.signal.in_flight:
            logger.warning("drain timeout: %d requests still in flight", self.signal.in_flight)
        if self.httpd is not None:
            self.httpd.shutdown()


def handler_for(gate: Gate) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "lookalike-gate"

        def log_message(self, format: str, *args) -> None:
            logger.debug(format, *args)

        def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            state = gate.state
            if state:
                self.send_header(REPLICA_HEADER, state)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, status: int, doc: dict) -> None:
            self.send(status, json.dumps(doc).encode())

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/live":
                alive, doc = gate.liveness()
                self.send_json(200 if alive else 503, doc)
            elif path == "/ready" or path == "/ping":
                ready, doc = gate.readiness()
                self.send_json(200 if ready else 503, doc)
            elif path == "/metrics":
                self.send(200, gate.metrics_text().encode(), "text/plain; version=0.0.4; charset=utf-8")
            else:
                self.send_json(404, {"code": 404, "message": f"no route {path}"})

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            length = self.headers.get("Content-Length")
            if not PREDICTION.match(path):
                self.send_json(404, {"code": 404, "message": f"no route {path}"})
                self.close_connection = True
                return
            if length is None or not length.isdigit():
                self.send_json(411, {"code": 411, "message": "send the image with a Content-Length"})
                self.close_connection = True
                return
            body = self.rfile.read(int(length))
            if not gate.authorised(self.headers.get("Authorization")):
                self.send_json(
                    401, {"code": 401, "type": "InvalidKeyException", "message": "bearer key missing or wrong"}
                )
                return
            if gate.refusing.is_set() or not gate.started.is_set():
                # closed after: the client's next try opens a new connection, which a Service routes elsewhere
                self.close_connection = True
                self.send_json(503, {"code": 503, "message": f"this replica is {gate.state}: send it elsewhere"})
                return
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
            if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                headers["Content-Type"] = "application/octet-stream"  # curl --data-binary's default: raw bytes
            try:
                status, content_type, answer = gate.predict(path, body, headers)
            except OSError as exc:
                self.send_json(503, {"code": 503, "message": f"TorchServe unreachable behind the gate: {exc!r}"})
                return
            self.send(status, answer, content_type)

    return Handler


def serve(gate: Gate, host: str, port: int, start_timeout: float = 300.0) -> int:
    """Listen at once (/live answers, /ready says "starting"), start TorchServe behind, serve until drained."""
    gate.httpd = Server((host, port), handler_for(gate))
    threading.Thread(target=gate.monitor, args=(start_timeout,), name="gate-monitor", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=gate.drain, name="gate-drain").start())
    logger.info("gate on http://%s:%d before TorchServe on 127.0.0.1:%d", host, port, gate.upstream.port)
    try:
        gate.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        gate.stopping.set()
        gate.httpd.server_close()
        gate.upstream.server.stop()
        logger.info("TorchServe stopped; gate exits")
    return 0


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m lookalike.serving.gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default=settings.gate_host, help="bind address (LOOKALIKE_GATE_HOST)")
    parser.add_argument("--port", type=int, default=settings.gate_port, help="port (LOOKALIKE_GATE_PORT)")
    parser.add_argument("--models", default=settings.gate_models,
                        help="comma-separated names, each <name>.mar in --store (LOOKALIKE_GATE_MODELS)")  # fmt: skip
    parser.add_argument("--store", type=Path, default=settings.model_store, help="LOOKALIKE_MODEL_STORE")
    parser.add_argument("--run-dir", type=Path, default=settings.home / "torchserve-gate", help="TorchServe's run dir")
    parser.add_argument("--ts-port", type=int, default=settings.gate_ts_port,
                        help="TorchServe's first loopback port, its others the next four (0: free ones)")  # fmt: skip
    parser.add_argument("--start-timeout", type=float, default=300.0, help="seconds for TorchServe to start (300)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gate %(message)s", stream=sys.stderr)
    names = [name for name in args.models.split(",") if name]
    base = args.ts_port
    ports = dict(zip(PORT_KEYS, range(base, base + len(PORT_KEYS)), strict=True)) if base else free_ports(PORT_KEYS)
    server = TorchServe({name: f"{name}.mar" for name in names}, store=args.store, run_dir=args.run_dir, ports=ports)
    gate = Gate(Upstream(server), token=settings.ts_token, grace=settings.drain_grace,
                drain_timeout=settings.drain_timeout, window=settings.signal_window)  # fmt: skip
    return serve(gate, args.host, args.port, args.start_timeout)


if __name__ == "__main__":
    sys.exit(main())
