"""The standard library's threading HTTP server as our small servers need it (the gate, the balancer)."""

from __future__ import annotations

import socket
from http.server import ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: socketserver's 5 drops a burst's connections

    def get_request(self) -> tuple[socket.socket, object]:
        conn, address = super().get_request()
        # BaseHTTPRequestHandler writes the headers, then the body: without this, Nagle holds the
        # body until the client's delayed ACK of the headers (up to 40 ms on every answer)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address
