"""Run the search API (uvicorn) on a free loopback port inside the test process."""

from __future__ import annotations

import threading
import time

import uvicorn

from lookalike.server import free_port
from opensearch.api import create_app
from opensearch.settings import SearchSettings


class ApiServer:
    def __init__(self, settings: SearchSettings) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                                    log_level="warning"))  # fmt: skip
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "API did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
