"""Time each stage of one search where it happens (embed, knn, verify), so a slow path names itself:
the API publishes the stages on /metrics, `lookalike search -v` prints them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Stages:
    """Seconds spent per stage of one request; `observe(stage, seconds)` is told of each as it ends."""

    def __init__(self, observe: Callable[[str, float], None] | None = None) -> None:
        self.seconds: dict[str, float] = {}
        self.observe = observe

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - started
            self.seconds[stage] = self.seconds.get(stage, 0.0) + took
            if self.observe is not None:
                self.observe(stage, took)

    def summary(self) -> str:
        """'embed 41.2 ms, knn 1.3 ms, verify 63.0 ms'."""
        return ", ".join(f"{stage} {1000 * seconds:.1f} ms" for stage, seconds in self.seconds.items())
