"""Several model-server instances behind one client: least outstanding requests, failover, and
an instance back in once it answers. Stand-in servers (fast tier) and real TorchServe (slow)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import psutil
import pytest
import requests
from lookalike_handler.wire import encode_vector

from lookalike import stack
from lookalike.api.process import ApiThread
from lookalike.errors import ModelServerDown
from lookalike.serving.client import ModelClient
from lookalike.serving.endpoints import Endpoints
from lookalike.settings import Settings
from tests.standin import StandInModelServer

LITE = "efficientnet_lite0"


def test_least_outstanding_then_in_turn():
    pool = Endpoints(["http://a", "http://b", "http://c"])
    first = pool.pick()
    second = pool.pick()
    third = pool.pick()
    assert {first, second, third} == {"http://a", "http://b", "http://c"}  # one each while all are busy
    pool.done(second, healthy=True)
    assert pool.pick() == second  # the only one with nothing in flight
    for url in (first, second, third):
        pool.done(url, healthy=True)
    assert {pool.pick() for _ in range(3)} == {"http://a", "http://b", "http://c"}  # ties go in turn


def test_a_failed_instance_is_out_for_a_while_then_probed_again():
    pool = Endpoints(["http://a", "http://b"], cooldown=0.3)
    bad = pool.pick()
    pool.done(bad, healthy=False)
    for _ in range(4):
        url = pool.pick()
        assert url != bad
        pool.done(url, healthy=True)
    assert pool.state()[bad].startswith("out for")
    time.sleep(0.35)
    picks = set()
    for _ in range(2):
        url = pool.pick()
        picks.add(url)
        pool.done(url, healthy=True)
    assert bad in picks and pool.state()[bad] == "up"  # probed once the pause is over; back in


def test_a_held_instance_is_out_until_its_hold_ends_and_a_success_elsewhere_does_not_end_it():
    pool = Endpoints(["http://a", "http://b"])
    pool.hold("http://a", 0.3)
    for _ in range(4):
        url = pool.pick()
        assert url == "http://b"
        pool.done(url, healthy=True)
    url = pool.pick()
    pool.done("http://b", healthy=True)  # a success does not end another's hold, nor a failure count
    assert pool.state()["http://a"].startswith("out for") and pool.failures["http://a"] == 0
    time.sleep(0.35)
    assert {pool.pick(), pool.pick()} == {"http://a", "http://b"}


class Draining:
    """A stand-in replica that refuses predictions as our gate does after its drain's grace: 503
    with the replica header, the connection closed; after `refusals` of them (a Service's next
    connection reaching a live replica) it answers a vector."""

    def __init__(self, refusals: int | None = None) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if refusals is not None and outer.requests > refusals:
                    body = encode_vector(np.ones(1280, dtype=np.float32) / np.sqrt(1280), LITE)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                body = b'{"code": 503, "message": "this replica is draining"}'
                self.close_connection = True
                self.send_response(503)
                self.send_header("Connection", "close")
                self.send_header("X-Lookalike-Replica", "draining")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def test_a_draining_replica_gets_nothing_new_and_its_refusal_goes_to_another_at_once(photos):
    draining = Draining()
    try:
        with StandInModelServer() as live:
            client = ModelClient(f"{draining.url},{live.inference_url}", LITE, retries=0)
            started = time.monotonic()
            vectors = [client.embed(photos["coffee"]) for _ in range(12)]
            assert len(vectors) == 12 and live.requests == 12  # none lost, none retried by back-off
            assert draining.requests == 1  # the refusal held it out of every later pick
            assert client.pool.state()[draining.url].startswith("out for")
            assert time.monotonic() - started < 5  # moved at once: no back-off sleep (0.5 s and up)
    finally:
        draining.httpd.shutdown()


def test_behind_one_url_a_refusal_is_sent_again_at_once():
    service = Draining(refusals=2)  # one address before several replicas: two refuse, the third serves
    try:
        client = ModelClient(service.url, LITE, retries=0)
        assert client.embed(b"any image").shape == (1280,) and service.requests == 3
        with pytest.raises(ModelServerDown, match="503"):  # refused past REFUSALS: the error, not a loop
            ModelClient(Draining().url, LITE, retries=0).embed(b"any image")
    finally:
        service.httpd.shutdown()


def test_requests_spread_over_instances_and_survive_one_going_away(photos):
    with StandInModelServer() as one, StandInModelServer() as two:
        client = ModelClient(f"{one.inference_url},{two.inference_url}", LITE, retries=0)
        with ThreadPoolExecutor(8) as threads:
            list(threads.map(client.embed, [photos["coffee"]] * 40))
        assert one.requests >= 10 and two.requests >= 10 and one.requests + two.requests == 40
        two.__exit__()  # gone: connections refused
        for _ in range(10):
            assert client.embed(photos["chelsea"]).shape == (1280,)  # failover, never an error
        assert client.pool.state()[two.inference_url].startswith("out for")
        client.close()
    with pytest.raises(ModelServerDown, match="unreachable"):
        ModelClient(f"{one.inference_url},{two.inference_url}", LITE, retries=0).embed(photos["coffee"])


def test_searches_keep_succeeding_when_a_torchserve_is_killed_mid_load(store, photos, tmp_path):
    """Two real TorchServe instances behind the API; one is SIGKILLed while searches run."""
    with (
        stack.torchserve([LITE], store, tmp_path / "a") as first,
        stack.torchserve([LITE], store, tmp_path / "b") as second,
    ):
        settings = Settings(ts_url=f"{first.inference_url},{second.inference_url}", model=LITE,
                                  data_dir=tmp_path / "index", thumb_dir=tmp_path / "thumbs")  # fmt: skip
        stack.ingest(settings, stack.photo_items(photos, tmp_path / "photos", "subjects", named=True))
        with ApiThread(settings) as api:

            def search(_: int) -> int:
                response = requests.post(f"{api.url}/search?k=3", data=photos["coffee"], timeout=120)
                return response.status_code

            with ThreadPoolExecutor(4) as threads:
                futures = [threads.submit(search, i) for i in range(40)]
                time.sleep(2)
                victim = psutil.Process(second.pid())  # the frontend and its workers, mid-load
                for process in [*victim.children(recursive=True), victim]:
                    process.kill()
                statuses = [future.result() for future in futures]
            assert statuses == [200] * 40
            health = requests.get(f"{api.url}/healthz", timeout=30).json()
            assert health["status"] == "ok" and health["model_server"].startswith("ok, degraded")
