"""Run the API in the foreground with a graceful stop: what `lookalike api` and the API image run.

On SIGTERM (or SIGINT) the replica drains: /ready answers 503 at once while requests are still
served for `drain_grace` seconds (the time a load balancer or Kubernetes needs to stop sending),
then uvicorn stops taking connections and waits up to `drain_timeout` seconds for the requests in
flight, and the process exits 0. A second signal stops at once.

    python -m lookalike.api          # the API image's command: settings from LOOKALIKE_* variables
"""

from __future__ import annotations

import logging
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from lookalike.api.app import create_app
from lookalike.settings import Settings

logger = logging.getLogger("lookalike.api")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, settings: Settings, app: FastAPI) -> None:
        super().__init__(config)
        self.settings, self.app = settings, app
        self.signalled = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.signalled:  # a second signal: stop now
            return super().handle_exit(sig, frame)
        self.signalled = True
        service = getattr(self.app.state, "service", None)  # made when the app started
        if service is not None:
            service.draining = True
        grace = self.settings.drain_grace
        logger.warning("signal %d: not ready; serving %.0f s more, then finishing requests in flight", sig, grace)
        threading.Timer(grace, self.stop).start()

    def stop(self) -> None:
        """Stop taking connections and finish the requests in flight; then exit 0 (a drained stop,
        not one by the signal: uvicorn would raise a signal it handled again once it stops)."""
        self.should_exit = True


def run(settings: Settings) -> int:
    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.api_host, port=settings.api_port, log_level="warning",
                            timeout_graceful_shutdown=int(settings.drain_timeout))  # fmt: skip
    DrainingServer(config, settings, app).run()
    return 0
