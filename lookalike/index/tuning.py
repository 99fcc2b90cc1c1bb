"""The efSearch an index searches with: the one `lookalike admin recall --target` recorded in the
index itself, else the configured one (LOOKALIKE_EF_SEARCH).

Each backend keeps the record where its index lives (the embedded index in SQLite's meta table,
OpenSearch in the index mapping's _meta) and hands `Tuning` two functions: read it, write it. A
process that holds the index open reads the record again at most every REREAD seconds as it
searches, so a running API takes up a newly recorded efSearch within that, without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

REREAD = 30.0  # seconds between reads of the record by a searching process


class Tuning:
    def __init__(self, read: Callable[[], dict | None], write: Callable[[dict], None], configured: int,
                 configured_from: str, reread: float = REREAD) -> None:  # fmt: skip
        self._read, self._write, self.reread = read, write, reread
        self.configured, self.configured_from = configured, configured_from
        self.recorded = read()
        self._read_at = time.monotonic()

    @property
    def ef_search(self) -> int:
        """The recorded efSearch if there is one, else the configured; the record is read again when stale."""
        if time.monotonic() - self._read_at >= self.reread:
            self.recorded, self._read_at = self._read(), time.monotonic()
        return int(self.recorded["chosen"]["ef_search"]) if self.recorded else self.configured

    def record(self, summary: dict) -> None:
        """Keep a recall estimate and the efSearch chosen by it (`summary["chosen"]`): searches use it
        from now on, here at once and in other processes within `reread` seconds."""
        self._write(summary)
        self.recorded, self._read_at = summary, time.monotonic()

    def describe(self) -> dict:
        """What `describe()` (admin info, /healthz) says of the efSearch searches use and why."""
        ef_search, tuning = self.ef_search, self.recorded
        if tuning is None:
            return {"ef_search": ef_search, "ef_search_from": self.configured_from, "recall": None}
        chosen = tuning["chosen"]
        return {"ef_search": ef_search, "ef_search_from": f"lookalike admin recall --target {tuning['target']}",
                "recall": {"at_k": tuning["k"], "estimate": chosen["recall"], "p50_ms": chosen["p50_ms"],
                           "measured_at": tuning["at"], "sample": tuning["sample"]}}  # fmt: skip
