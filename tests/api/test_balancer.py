"""The balancer before API replicas (lookalike.balancer): readiness read both ways, a draining
replica's refusals and a dead replica's unreached requests moved to another when idempotent.

Fast tier: the replicas are small stand-in HTTP servers (their /ready, /search and the replica
header as our API sends them, NOT the API). Two real API processes behind it, restarted under
Locust load, are in tests/operations/ (slow tier)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from lookalike.balancer import Balancer, handler_for, idempotent
from lookalike.serving.httpserver import Server


class Replica:
    """A stand-in API replica: /ready 200 (503 while draining), POST /search answers its own name,
    and while draining (after its grace) refuses with 503 and the replica header."""

    def __init__(self, name: str) -> None:
        self.name, self.draining, self.refusing, self.requests = name, False, False, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                if outer.draining:
                    self.send_header("X-Lookalike-Replica", "draining")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self.answer(503 if outer.draining else 200, {"status": "ready"})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if outer.refusing:
                    self.answer(503, {"detail": "draining"})
                    return
                outer.requests += 1
                self.answer(200, {"replica": outer.name, "forwarded_for": self.headers.get("X-Forwarded-For")})

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def die(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def balanced():
    replicas = [Replica("a"), Replica("b")]
    balancer = Balancer([r.url for r in replicas], interval=0.1, retry_for=0.5)
    httpd = Server(("127.0.0.1", 0), handler_for(balancer))
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    watcher = threading.Thread(target=balancer.watch, daemon=True)
    watcher.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", balancer, replicas, watcher
    finally:
        balancer.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        for replica in replicas:
            if replica.httpd.socket.fileno() != -1:
                replica.die()


def searches(url: str, n: int) -> list[str]:
    with httpx.Client(timeout=10) as client:
        answers = [client.post(f"{url}/search", content=b"image") for _ in range(n)]
    assert [a.status_code for a in answers] == [200] * n, [a.text for a in answers if a.status_code != 200]
    return [a.json()["replica"] for a in answers]


def test_idempotent_requests_survive_a_replica_draining_then_dying(balanced):
    url, balancer, (a, _b), watcher = balanced
    assert set(searches(url, 10)) == {"a", "b"}  # spread over both
    a.draining = True  # SIGTERM: answers say "draining", /ready 503
    deadline = time.monotonic() + 5
    while balancer.pool.held_until[a.url] <= time.monotonic() < deadline:  # the watcher reads /ready
        time.sleep(0.02)
    before = a.requests
    assert set(searches(url, 10)) == {"b"} and a.requests == before  # nothing new to a
    a.refusing = True
    balancer.stopping.set()  # the watcher saw nothing: stopped, and waited for, so that a read
    watcher.join()  # in flight cannot hold a again after the line below
    balancer.pool.held_until[a.url] = 0.0  # were its hold over, a refusal still moves the request
    assert set(searches(url, 5)) == {"b"}
    a.die()
    balancer.pool.held_until[a.url] = 0.0
    assert set(searches(url, 10)) == {"b"}  # connection refused: moved, then a is out
    assert balancer.retried >= 2


def test_a_request_that_may_have_been_carried_out_is_not_sent_twice(balanced):
    url, _balancer, (a, b), _watcher = balanced
    a.die()
    b.die()
    answer = httpx.post(f"{url}/duplicates/decisions", content=b"{}", timeout=10)
    assert answer.status_code == 502 and "no API replica answered" in answer.json()["detail"]
    assert httpx.post(f"{url}/search", content=b"image", timeout=10).status_code == 502  # after retry_for


def test_what_counts_as_idempotent():
    assert idempotent("GET", "/similar/x") and idempotent("PUT", "/images/x") and idempotent("DELETE", "/images/x")
    assert idempotent("POST", "/search?k=5")
    assert not idempotent("POST", "/duplicates/decisions")
