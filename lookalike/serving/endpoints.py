"""Several model-server instances behind one client: least outstanding requests, a failed
instance taken out for a while and its request retried on another, back in once it answers.

One pool per set of URLs per process, shared by every client of it (ingest gives each worker
thread its own client; the API has one async client), so "outstanding" counts them all.
Health is passive: an instance that refused a connection or answered 5xx is skipped for
`cooldown` seconds (doubling while it keeps failing, up to 60 s), then the next request that
picks it is the probe; one success puts it back. An instance that says it is draining or still
starting (the REPLICA header of our gate and API) is held out for a fixed while (`hold`), not
counted as failing: a replica being replaced comes back at the same address.
"""

from __future__ import annotations

import itertools
import threading
import time

MAX_COOLDOWN = 60.0
# The header our gate and API send while they cannot take new work, and how long a client keeps
# away from each state: a draining replica is going away (a new one at its address is probed
# after HOLD_S["draining"]); a starting one is back in seconds.
REPLICA_HEADER = "X-Lookalike-Replica"
HOLD_S = {"draining": 15.0, "starting": 2.0}


class Endpoints:
    def __init__(self, urls: list[str], cooldown: float = 2.0) -> None:
        if not urls:
            raise ValueError("no model-server URL")
        self.urls = [url.rstrip("/") for url in urls]
        self.cooldown = cooldown
        self.lock = threading.Lock()
        self.outstanding = dict.fromkeys(self.urls, 0)
        self.down_until = dict.fromkeys(self.urls, 0.0)  # failing: out until then
        self.held_until = dict.fromkeys(self.urls, 0.0)  # draining or starting: out until then
        self.failures = dict.fromkeys(self.urls, 0)
        self.turn = itertools.count()

    def __len__(self) -> int:
        return len(self.urls)

    def pick(self, avoid: set[str] | frozenset[str] = frozenset()) -> str:
        """The up instance with the fewest requests in flight (ties in turn), not in `avoid` if
        another is left; when all are down, the one back soonest. Counts the request as started."""
        with self.lock:
            now = time.monotonic()
            candidates = [url for url in self.urls if url not in avoid] or list(self.urls)
            up = [url for url in candidates if self.out_until(url) <= now]
            if up:
                start = next(self.turn) % len(self.urls)
                rotated = self.urls[start:] + self.urls[:start]
                chosen = min((url for url in rotated if url in up), key=lambda url: self.outstanding[url])
            else:
                chosen = min(candidates, key=self.out_until)
            self.outstanding[chosen] += 1
            return chosen

    def done(self, url: str, healthy: bool) -> None:
        """The request to `url` is over; `healthy` False takes the instance out for a while."""
        with self.lock:
            self.outstanding[url] -= 1
            if healthy:
                self.failures[url], self.down_until[url] = 0, 0.0
            else:
                self.failures[url] += 1
                pause = min(MAX_COOLDOWN, self.cooldown * 2 ** (self.failures[url] - 1))
                self.down_until[url] = time.monotonic() + pause

    def hold(self, url: str, seconds: float) -> None:
        """Keep `url` out of `pick` for `seconds` without counting a failure (a replica draining or starting)."""
        with self.lock:
            self.held_until[url] = max(self.held_until[url], time.monotonic() + seconds)

    def out_until(self, url: str) -> float:
        return max(self.down_until[url], self.held_until[url])

    def state(self) -> dict[str, str]:
        now = time.monotonic()
        with self.lock:
            return {url: "up" if self.out_until(url) <= now else f"out for {self.out_until(url) - now:.0f} s"
                    for url in self.urls}  # fmt: skip


_POOLS: dict[tuple[str, ...], Endpoints] = {}
_POOLS_LOCK = threading.Lock()


def pool(urls: str) -> Endpoints:
    """The process's shared pool for a comma-separated list of model-server URLs."""
    key = tuple(url.strip().rstrip("/") for url in urls.split(",") if url.strip())
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = Endpoints(list(key))
        return _POOLS[key]
