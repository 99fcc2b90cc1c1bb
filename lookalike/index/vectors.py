"""A float32 copy of the documents' stored vectors, one row per SQLite key, beside the graph.

The exact re-rank reads every candidate's full vector. In SQLite a 2048-d vector (8 KB) is a
B-tree seek and a chain of overflow pages, and the 40 candidates of a search at 1M took 0.20 ms to
read; from this file they are 40 `preadv` calls into one buffer, 0.05 ms (docs/operations.md).
SQLite stays the source of truth: like the graph, the file is a cache of it, filled as the graph
catches up.

No memory map: mapped file pages count in the process's RSS, and the kernel maps 64 KB around
every page a read faults in, so a map of the file grew to the whole file (8 GB at 1M x 2048-d) in
a benchmark of 2,200 searches. Read with preadv, the rows stay in the page cache, outside the
process, as SQLite's pages do.

Row `key` lies at byte key x 4D; keys are never reused, so a row once written never changes, and
two processes that fill the same rows write the same bytes. `upto` is the last key the file holds
every row up to; the graph saves it only after an fsync, and a file found shorter is filled again
from SQLite. Deleted rows stay in the file as holes nothing reads (the re-rank reads only keys the
graph proposes, and a key deleted meanwhile is dropped when its metadata is read).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lookalike.errors import IndexUnavailable

NAME = "vectors.f32"


class VectorFile:
    def __init__(self, path: Path, dimension: int, upto: int = 0) -> None:
        """`upto`: the last key the saved graph says the file holds (less if the file is shorter)."""
        self.path, self.dimension = path, dimension
        self.row_bytes = 4 * dimension
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        rows = os.fstat(self._fd).st_size // self.row_bytes  # keys 0 .. rows - 1 fit in the file
        self.upto = max(0, min(upto, rows - 1))

    def write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Store `vectors` [n, D] as the rows of ascending `keys`, one pwrite per run of consecutive keys."""
        if not len(keys):
            return
        data = np.ascontiguousarray(vectors, dtype="<f4")
        breaks = np.flatnonzero(np.diff(keys) != 1) + 1
        for start, end in zip(np.r_[0, breaks], np.r_[breaks, len(keys)], strict=True):
            chunk, offset = data[start:end].data.cast("B"), int(keys[start]) * self.row_bytes
            while chunk:  # pwrite may write less than asked
                try:
                    written = os.pwrite(self._fd, chunk, offset)
                except OSError as exc:  # a full disk, typically: say which file, and nothing is counted
                    raise IndexUnavailable(f"cannot write the re-rank's vector file {self.path}: {exc}") from exc
                chunk, offset = chunk[written:], offset + written
        self.upto = max(self.upto, int(keys[-1]))

    def read(self, keys: list[int]) -> np.ndarray:
        """The rows [len(keys), D] float32 of `keys` (each at most `upto`)."""
        rows = np.empty((len(keys), self.dimension), dtype="<f4")
        view = rows.data.cast("B")
        for at, key in enumerate(keys):
            start = at * self.row_bytes
            if os.preadv(self._fd, [view[start : start + self.row_bytes]], key * self.row_bytes) != self.row_bytes:
                raise IndexUnavailable(f"the re-rank's vector file {self.path} ends before row {key}")
        return rows

    def sync(self) -> None:
        """Make the rows written so far durable (before a saved graph records `upto`)."""
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise IndexUnavailable(f"cannot make the re-rank's vector file {self.path} durable: {exc}") from exc

    def close(self) -> None:
        os.close(self._fd)
