"""Progress of long work (ingest, de-duplication): a bar on a terminal, a plain line elsewhere.

On a terminal it is tqdm's bar with rate and ETA. Anywhere else (CI, `make demo > log`, journald)
a bar's carriage-return updates pile up into one endless line, so instead one plain line is
written every `every` seconds, and one at the end:

    ingest: 1200/10000 (12 %), 41.3/s, ETA 3m33s - indexed 1180, unchanged 12, failed 8
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

PLAIN_EVERY = 10.0  # seconds between plain lines


class Progress:
    """`update(n, **counts)` as work is done; `close()` at the end (or use it in a `with`)."""

    def __init__(self, label: str, total: int | None = None, unit: str = "img", enabled: bool = True,
                 stream: TextIO | None = None, every: float = PLAIN_EVERY) -> None:  # fmt: skip
        self.label, self.total, self.unit, self.every = label, total, unit, every
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.counts: dict[str, int] = {}
        self.started = self.last = time.monotonic()
        terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = tqdm(total=total, unit=unit, desc=label, file=self.stream, dynamic_ncols=True) if (
            enabled and terminal) else None  # fmt: skip

    def update(self, n: int = 1, **counts: int) -> None:
        self.done += n
        self.counts.update(counts)
        if self.bar is not None:
            self.bar.update(n)
            if counts:
                self.bar.set_postfix(counts, refresh=False)
        elif self.enabled and time.monotonic() - self.last >= self.every:
            self._line()

    def line(self) -> str:
        """The plain line: done/total (percent), rate, ETA, then the counts."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done}"
        if self.total:
            text += f"/{self.total} ({100 * self.done / self.total:.0f} %)"
        text += f", {rate:.1f} {self.unit}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {duration((self.total - self.done) / rate)}"
        if self.counts:
            text += " - " + ", ".join(f"{key} {value}" for key, value in self.counts.items())
        return text

    def _line(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self.last = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.done:
            self._line()
        self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def duration(seconds: float) -> str:
    """12s, 3m33s, 2h05m."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
