"""The autoscaling signal of one replica: requests in flight and waiting, and queue time over compute time.

Both servers keep one (`lookalike.serving.gate` for the model server, `lookalike.api.metrics` for
the API) and export it on /metrics as gauges, because a counter cannot tell a busy replica from an
idle one without a rate, and an autoscaler that scales on a raw counter never scales back down.

- in flight: requests taken and not yet answered (an instant value);
- waiting: of those, the ones queued for a worker rather than being worked on;
- in_flight_mean, waiting_mean: each sampled ten times a second and averaged over the window, so
  a scrape every 15 or 30 s sees the load between scrapes, not one instant of it;
- queue_ratio: over the window, the time requests spent queued divided by the time they spent
  being computed. Below ~0.5 work starts nearly as it arrives; at 1 requests wait as long as they
  run: the replica is at its knee (docs/operations.md, "Running in production").

Pure bookkeeping with a clock handed in, so it is tested without a server.
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_S = 30.0  # the span the mean and the ratio cover
SAMPLE_S = 0.1  # how often `waiting` is sampled for its mean
# What the model server's autoscaler reads (deploy/kubernetes) and the value it holds each replica
# to: half its capacity (2 workers x batch 8) in flight on average. Measured (docs/operations.md,
# "Running in production"): in flight tracks load and crosses 8 a step before the knee; the queue
# ratio does not rise on a batching server (its waiting shows as bigger batches, not as queue).
SIGNAL = "lookalike_model_requests_in_flight_mean"
THRESHOLD = 8.0


class Signal:
    def __init__(self, window: float = WINDOW_S) -> None:
        self.window = window
        self.in_flight = 0
        self.waiting = 0
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int, int]] = deque()  # (when, in flight, waiting)
        self._times: deque[tuple[float, float, float]] = deque()  # (when, queued s, computed s) per request
        self._totals: deque[tuple[float, float, float]] = deque()  # cumulative counters read at `when`

    # -- a replica that sees each request's queue and compute time ----------------------------
    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def set_waiting(self, waiting: int) -> None:
        self.waiting = max(0, waiting)

    def timed(self, queued: float, computed: float, now: float | None = None) -> None:
        """One piece of work queued `queued` s, then ran `computed` s."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._times.append((now, queued, computed))
            self._trim(self._times, now)

    # -- a replica that only reads cumulative counters (TorchServe's) ---------------------------
    def totals(self, queued: float, computed: float, now: float | None = None) -> None:
        """Cumulative seconds queued and computed so far, as a server's counters say at `now`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._totals and (queued < self._totals[-1][1] or computed < self._totals[-1][2]):
                self._totals.clear()  # the server restarted: its counters began again
            self._totals.append((now, queued, computed))
            while len(self._totals) > 1 and self._totals[1][0] <= now - self.window:
                self._totals.popleft()

    def sample(self, now: float | None = None) -> None:
        """Record `in_flight` and `waiting` for the windowed means (call every SAMPLE_S)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._samples.append((now, self.in_flight, self.waiting))
            self._trim(self._samples, now)

    # -- read ----------------------------------------------------------------------------------
    def waiting_mean(self, now: float | None = None) -> float:
        return self._mean(2, float(self.waiting), now)

    def in_flight_mean(self, now: float | None = None) -> float:
        return self._mean(1, float(self.in_flight), now)

    def _mean(self, column: int, instant: float, now: float | None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(self._samples, now)
            samples = [sample[column] for sample in self._samples]
        return sum(samples) / len(samples) if samples else instant

    def queue_ratio(self, now: float | None = None) -> float:
        """Queued time over computed time in the window (0 when nothing was computed)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(self._times, now)
            queued = sum(item[1] for item in self._times)
            computed = sum(item[2] for item in self._times)
            if len(self._totals) > 1:
                first, last = self._totals[0], self._totals[-1]
                queued += last[1] - first[1]
                computed += last[2] - first[2]
        return queued / computed if computed > 0 else 0.0

    def _trim(self, samples: deque, now: float) -> None:
        while samples and samples[0][0] < now - self.window:
            samples.popleft()

    def gauges(self, prefix: str, now: float | None = None) -> list[tuple[str, str, float]]:
        """(name, help, value) of each gauge, for a /metrics page."""
        return [
            (f"{prefix}_requests_in_flight", "Requests taken and not yet answered", float(self.in_flight)),
            (f"{prefix}_requests_in_flight_mean", f"requests_in_flight averaged over the last {self.window:.0f} s",
             self.in_flight_mean(now)),
            (f"{prefix}_requests_waiting", "Requests in flight queued for a worker", float(self.waiting)),
            (f"{prefix}_requests_waiting_mean", f"requests_waiting averaged over the last {self.window:.0f} s",
             self.waiting_mean(now)),
            (f"{prefix}_queue_ratio", f"Time queued / time computed over the last {self.window:.0f} s "
             "(>= 1: requests wait as long as they run)", self.queue_ratio(now)),
        ]  # fmt: skip


def render(gauges: list[tuple[str, str, float]]) -> str:
    """Prometheus text for `gauges`."""
    lines = []
    for name, help_text, value in gauges:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:.6g}"]
    return "\n".join(lines) + "\n"
