"""The model server's gate (lookalike.serving.gate) and the autoscaling signal (lookalike.serving.signal).

Fast tier: the gate runs in-process in front of the stand-in model server (tests/standin.py: our
wire format and the handler's own decoding, NOT TorchServe) plus a small stand-in of TorchServe's
management and metrics ports. The gate in front of real TorchServe runs in the container test
(tests/deploy/test_containers.py, slow tier)."""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from lookalike.ports import free_port
from lookalike.serving.gate import Gate, Upstream, counters, handler_for
from lookalike.serving.httpserver import Server
from lookalike.serving.signal import Signal
from tests.standin import StandInModelServer

TS_METRICS = """# HELP ts_queue_latency_microseconds Cumulative queue duration in microseconds
# TYPE ts_queue_latency_microseconds counter
ts_queue_latency_microseconds{model_name="a",model_version="default",hostname="vm",} 3000000.0
ts_queue_latency_microseconds{model_name="b",model_version="default",hostname="vm",} 1000000.0
# TYPE ts_inference_latency_microseconds counter
ts_inference_latency_microseconds{model_name="a",model_version="default",hostname="vm",} 9000000.0
ts_inference_latency_microseconds{model_name="b",model_version="default",hostname="vm",} 3000000.0
ts_inference_requests_total{model_name="a",model_version="default",hostname="vm",} 30.0
"""


def test_torchserve_counters_give_queued_and_computed_seconds():
    # TorchServe's inference latency runs from arrival to answer: it holds the queue time
    assert counters(TS_METRICS) == pytest.approx((4.0, 8.0))
    assert counters("") == (0.0, 0.0)


def test_signal_ratio_mean_and_window():
    signal = Signal(window=10)
    signal.timed(queued=1.0, computed=2.0, now=100.0)
    signal.timed(queued=3.0, computed=2.0, now=105.0)
    assert signal.queue_ratio(now=106.0) == pytest.approx(1.0)
    assert signal.queue_ratio(now=112.0) == pytest.approx(1.5)  # the first fell out of the window
    assert signal.queue_ratio(now=200.0) == 0.0  # nothing computed: no queue to speak of
    for now, waiting in ((100.0, 0), (101.0, 4), (102.0, 8)):
        signal.set_waiting(waiting)
        signal.sample(now)
    assert signal.waiting_mean(now=102.0) == pytest.approx(4.0)
    assert signal.waiting_mean(now=111.5) == pytest.approx(8.0)
    signal.set_waiting(-3)  # in flight below capacity: nobody waits
    assert signal.waiting == 0


def test_signal_from_cumulative_counters_survives_a_restart():
    signal = Signal(window=30)
    signal.totals(10.0, 100.0, now=0.0)
    signal.totals(30.0, 120.0, now=10.0)
    assert signal.queue_ratio(now=10.0) == pytest.approx(1.0)  # 20 s queued / 20 s computed in the window
    signal.totals(1.0, 2.0, now=11.0)  # counters began again: the server restarted
    signal.totals(2.0, 6.0, now=12.0)
    assert signal.queue_ratio(now=12.0) == pytest.approx(0.25)


class StandInTorchServe:
    """What the gate reads of TorchServe besides predictions: its management API (one model, its
    workers READY or not) and its metrics page; inference is the stand-in model server."""

    def __init__(self, inference_port: int) -> None:
        self.models = {"efficientnet_lite0": "efficientnet_lite0.mar"}
        self.ready_workers = 0
        self.started = self.stopped = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.startswith("/models/"):
                    workers = [{"status": "READY"}] * outer.ready_workers
                    body = json.dumps([{"batchSize": 8, "workers": workers}]).encode()
                else:
                    body = TS_METRICS.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.httpd.server_port
        self.ports = {"inference": inference_port, "management": port, "metrics": port}
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def start(self, timeout: float) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def pid(self) -> int:
        return os.getpid()

    def log_tail(self) -> str:
        return ""


@pytest.fixture
def gated(photos):
    """A gate on a free port in front of the stand-ins; yields (url, gate, torchserve stand-in)."""
    with StandInModelServer() as model_server:
        torchserve = StandInTorchServe(int(model_server.inference_url.rsplit(":", 1)[1]))
        gate = Gate(Upstream(torchserve), token="sesame", grace=0.3, drain_timeout=5)  # type: ignore[arg-type]
        gate.interval = 0.1
        port = free_port()
        gate.httpd = Server(("127.0.0.1", port), handler_for(gate))
        serving = threading.Thread(target=gate.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        serving.start()
        try:
            yield f"http://127.0.0.1:{port}", gate, torchserve
        finally:
            gate.stopping.set()
            if serving.is_alive():
                gate.httpd.shutdown()
            gate.httpd.server_close()
            torchserve.httpd.shutdown()


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_gate_probes_predictions_metrics_and_drain(gated, photos):
    url, gate, torchserve = gated
    key = {"Authorization": "Bearer sesame"}
    image = next(iter(photos.values()))

    # starting: alive (TorchServe loads), not ready
    assert httpx.get(f"{url}/live").json() == {"status": "starting"}
    ready = httpx.get(f"{url}/ready")
    assert ready.status_code == 503 and ready.json()["problems"] == ["starting"]
    early = httpx.post(f"{url}/predictions/efficientnet_lite0", content=image, headers=key)
    assert early.status_code == 503 and early.headers["X-Lookalike-Replica"] == "starting"

    monitor = threading.Thread(target=gate.monitor, args=(5.0,), daemon=True)
    monitor.start()
    wait_for(lambda: torchserve.started and gate.started.is_set())
    wait_for(lambda: "efficientnet_lite0: no READY worker" in httpx.get(f"{url}/ready").json()["problems"])
    torchserve.ready_workers = 2
    wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200)  # READY and warmed
    assert httpx.get(f"{url}/ready").json()["capacity"] == 16
    assert httpx.get(f"{url}/live").json()["status"] == "alive"

    # predictions go through as TorchServe answers them; the bearer key is the gate's to check
    answer = httpx.post(f"{url}/predictions/efficientnet_lite0", content=image, headers=key)
    assert answer.status_code == 200 and answer.json()["dimension"] == 1280
    curl_default = {**key, "Content-Type": "application/x-www-form-urlencoded"}  # curl --data-binary
    assert httpx.post(f"{url}/predictions/efficientnet_lite0", content=image, headers=curl_default).status_code == 200
    refused = httpx.post(f"{url}/predictions/efficientnet_lite0", content=b"not an image", headers=key)
    assert refused.status_code == 415 and "image" in refused.json()["error"]
    assert httpx.post(f"{url}/predictions/efficientnet_lite0", content=image).status_code == 401
    assert httpx.post(f"{url}/predictions/efficientnet_lite0", content=image,
                      headers={"Authorization": "Bearer wrong"}).status_code == 401  # fmt: skip
    assert httpx.post(f"{url}/models", content=b"{}", headers=key).status_code == 404  # no management API

    page = httpx.get(f"{url}/metrics").text
    for gauge in ("lookalike_model_requests_in_flight 0", "lookalike_model_requests_waiting 0",
                  "lookalike_model_capacity 16", "lookalike_model_ready 1", "lookalike_model_draining 0",
                  "lookalike_model_queue_ratio ", "lookalike_model_requests_waiting_mean "):  # fmt: skip
        assert gauge in page
    assert "ts_inference_latency_microseconds{" in page  # TorchServe's own metrics follow
    assert "lookalike_model_requests_total 3" in page  # the 200s, the 415: TorchServe answered them
    assert "X-Lookalike-Replica" not in answer.headers  # taking work: no replica header

    # SIGTERM: not ready at once, predictions still served during the grace (saying "draining"),
    # then refused with 503 while the ones in flight finish, then the server stops
    gate.signal.started()  # one prediction in flight holds the drain open
    draining = threading.Thread(target=gate.drain)
    draining.start()
    wait_for(gate.draining.is_set)
    assert httpx.get(f"{url}/ready").json()["problems"] == ["draining"]
    served = httpx.post(f"{url}/predictions/efficientnet_lite0", content=image, headers=key)
    assert served.status_code == 200 and served.headers["X-Lookalike-Replica"] == "draining"
    assert "lookalike_model_draining 1" in httpx.get(f"{url}/metrics").text
    wait_for(gate.refusing.is_set)
    refused = httpx.post(f"{url}/predictions/efficientnet_lite0", content=image, headers=key)
    assert refused.status_code == 503 and refused.headers["X-Lookalike-Replica"] == "draining"
    assert draining.is_alive()  # still waiting for the one in flight
    gate.signal.finished()
    draining.join(10)
    assert not draining.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/live", timeout=2)
