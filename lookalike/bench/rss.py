"""This process's resident memory, read from /proc/self/status (benchmarks report it)."""

from __future__ import annotations

from pathlib import Path


def _status_mb(key: str) -> float:
    """A memory line of /proc/self/status, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    """This process's resident-memory high-water mark (VmHWM: unlike ru_maxrss, it starts afresh at exec)."""
    return _status_mb("VmHWM")


def current_rss_mb() -> float:
    return _status_mb("VmRSS")
