"""A fault-injecting HTTP proxy in front of the real OpenSearch node — a test fixture. In front of
a secured node it speaks plain HTTP on loopback to our client and TLS to the node.

A live node cannot be made to reject a bulk request with 429 (queue full) or fail it with 502/503
on demand, so this proxy answers the next requests whose path ends with a given suffix with
queued error statuses and forwards everything else to the node unchanged.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

ERROR_TYPES = {429: "rejected_execution_exception", 502: "bad_gateway", 503: "unavailable_shards_exception"}


class FaultProxy:
    """`fail(suffix, *statuses)` queues error answers; `mode` "down" drops every connection unanswered
    (a node that died), "hang" holds every request `hang_seconds` and then drops it (a node that
    stopped answering), "up" (the default) forwards."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode, self.hang_seconds = "up", 5.0
        self.faults: dict[str, list[int]] = {}
        self.injected: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # a secured node upstream (https): trusted by the CA its tests use (tests/conftest.py)
        ca_file = os.environ.get("LOOKALIKE_OPENSEARCH_CA_FILE")
        self.trusted: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True

    def fail(self, suffix: str, *statuses: int) -> None:
        """Answer the next len(statuses) requests whose path ends with `suffix` with these statuses."""
        with self.lock:
            self.faults.setdefault(suffix, []).extend(statuses)

    def _next_fault(self, path: str) -> int | None:
        with self.lock:
            for suffix, queue in self.faults.items():
                if path.split("?")[0].endswith(suffix) and queue:
                    status = queue.pop(0)
                    self.injected.append((path, status))
                    return status
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.mode != "up":
                    if proxy.mode == "hang":
                        time.sleep(proxy.hang_seconds)
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status = proxy._next_fault(self.path)
                if status is not None:
                    error = {"type": ERROR_TYPES.get(status, "injected"), "reason": f"injected {status}"}
                    self._send(status, json.dumps({"error": error, "status": status}).encode(), "application/json")
                    return
                relayed = ("content-type", "authorization")  # a secured node's user, passed on
                headers = {key: value for key, value in self.headers.items() if key.lower() in relayed}
                answer = httpx.request(self.command, proxy.upstream + self.path, content=body, headers=headers,
                                       timeout=60, verify=proxy.trusted)  # fmt: skip
                self._send(answer.status_code, answer.content, answer.headers.get("content-type", "application/json"))

            def _send(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _relay

        return Handler

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
