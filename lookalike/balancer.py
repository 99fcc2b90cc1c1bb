"""A small HTTP balancer before several API replicas: what a site runs where no load balancer or
Kubernetes Service stands in front of the API (one host, two replicas, a restart without a
failed request), and what the operations tests put before two API processes.

    lookalike balance --port 8000 --to http://127.0.0.1:8001,http://127.0.0.1:8002

- Each request goes to the ready replica with the fewest requests in flight (the model client's
  pool, lookalike.serving.endpoints); a replica that refuses connections or answers 5xx is out
  for a while.
- Readiness is read both ways: each replica's GET /ready every `interval` seconds, and the replica
  header on every answer (`X-Lookalike-Replica: draining` after SIGTERM). A replica that is not
  ready gets nothing new.
- A request that reached no replica (connection refused or closed before an answer), or that a
  draining replica refused with 503, is sent to another one when it is idempotent: GET, HEAD,
  PUT, DELETE, and POST /search (a search changes nothing). Others get the answer as it came
  (or 502), since they may have been carried out.

It reads each request whole before sending it on (uploads are bounded by the API's own limit)
and adds X-Forwarded-For. Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from lookalike.serving.endpoints import HOLD_S, REPLICA_HEADER, Endpoints
from lookalike.serving.httpserver import Server

logger = logging.getLogger("lookalike.balancer")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "content-length", "host"}  # fmt: skip
IDEMPOTENT_POSTS = ("/search",)
RETRY_FOR_S = 15.0  # how long an idempotent request may wait for some replica to take it


def idempotent(method: str, path: str) -> bool:
    return method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS") or (
        method == "POST" and urlsplit(path).path in IDEMPOTENT_POSTS
    )


class Unreached(Exception):
    """The request reached no replica: connection refused, or closed before any answer."""


class Balancer:
    def __init__(self, urls: list[str], interval: float = 1.0, timeout: float = 120.0,
                 retry_for: float = RETRY_FOR_S) -> None:  # fmt: skip
        self.pool = Endpoints(urls)
        self.interval, self.timeout, self.retry_for = interval, timeout, retry_for
        self.local = threading.local()
        self.stopping = threading.Event()
        self.retried = 0  # requests sent again to another replica (the operator's figure)

    # -- readiness, read actively -----------------------------------------------------------
    def watch(self) -> None:
        while not self.stopping.is_set():
            for url in self.pool.urls:
                if not self.ready(url):
                    self.pool.hold(url, self.interval * 1.5)
            self.stopping.wait(self.interval)

    def ready(self, url: str) -> bool:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=5)
        try:
            conn.request("GET", "/ready")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    # -- forwarding -----------------------------------------------------------------------------
    def connection(self, url: str) -> http.client.HTTPConnection:
        """This thread's keep-alive connection to `url`."""
        conns = self.local.__dict__.setdefault("conns", {})
        if url not in conns:
            parts = urlsplit(url)
            conns[url] = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80,
                                                    timeout=self.timeout)  # fmt: skip
        return conns[url]

    def send(self, url: str, method: str, path: str, body: bytes, headers: dict[str, str]):
        """One try on `url`: (status, headers, body); Unreached when no replica saw the request."""
        conn = self.connection(url)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest) as exc:
            conn.close()
            raise Unreached(repr(exc)) from exc
        except (OSError, http.client.HTTPException):
            conn.close()
            raise

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]):
        again = idempotent(method, path)
        deadline = time.monotonic() + self.retry_for
        tried: set[str] = set()
        while True:
            url = self.pool.pick(avoid=tried)
            healthy = True
            try:
                status, answer_headers, answer = self.send(url, method, path, body, headers)
                state = dict((k.lower(), v) for k, v in answer_headers).get(REPLICA_HEADER.lower())
                if state in HOLD_S:
                    self.pool.hold(url, HOLD_S[state])
                    if status == 503 and again and time.monotonic() < deadline:
                        tried.add(url)
                        self.retried += 1
                        continue
                if status >= 500 and state is None:
                    healthy = status not in (502, 503, 504)
                return status, answer_headers, answer
            except Unreached as exc:
                healthy = False
                if not again or time.monotonic() >= deadline:
                    return failed(f"no API replica answered: {exc}")
                tried.add(url)
                self.retried += 1
                if tried >= set(self.pool.urls):  # every replica tried once: wait a little, try again
                    tried.clear()
                    time.sleep(0.2)
            except (OSError, http.client.HTTPException) as exc:  # timed out or broke mid-answer: said, not dropped
                healthy = False
                return failed(f"the API replica failed mid-request: {exc!r}")
            finally:
                self.pool.done(url, healthy)


def failed(reason: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The balancer's own 502: JSON, its reason in `detail`."""
    return 502, [("Content-Type", "application/json")], json.dumps({"detail": reason}).encode()


def handler_for(balancer: Balancer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "lookalike-balancer"

        def log_message(self, format: str, *args) -> None:
            logger.debug(format, *args)

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            status, answer_headers, answer = balancer.forward(self.command, self.path, body, headers)
            self.send_response(status)
            for name, value in answer_headers:
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = handle_any

    return Handler


def serve(balancer: Balancer, host: str, port: int) -> int:
    httpd = Server((host, port), handler_for(balancer))
    threading.Thread(target=balancer.watch, name="balancer-watch", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    logger.info("balancing http://%s:%d over %s", host, port, ", ".join(balancer.pool.urls))
    try:
        httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        balancer.stopping.set()
        httpd.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lookalike balance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (8000)")
    parser.add_argument("--to", required=True, help="comma-separated API replica URLs")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between readiness reads (1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s balancer %(message)s", stream=sys.stderr)
    urls = [url.strip() for url in args.to.split(",") if url.strip()]
    return serve(Balancer(urls, args.interval), args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
