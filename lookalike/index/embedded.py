"""The embedded index: SQLite (documents, metadata, vectors; the source of truth) + a FAISS HNSW graph.

No server needed. The graph holds its vectors as float32 (`none`), float16 (`fp16`) or 8-bit
scalar codes (`sq8`, 4x smaller: 1M 2048-d vectors fit in ~2.3 GB of memory); whatever the
graph holds, its candidates are re-ranked by exact cosine on the float32 vectors read back from
SQLite (page cache, not process memory), so scores and thresholds never depend on the choice.

Cosine on L2-normalised vectors is inner product. SQLite commits each write batch durably
(WAL), so a killed ingest loses nothing it reported written. The graph is a cache of SQLite
(lookalike.index.graph): saved with the SQLite position it holds, caught up on open or when
another process wrote. Upsert = delete + insert under a new key (AUTOINCREMENT never reuses
one); replaced or deleted keys are tombstones that searches exclude.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from lookalike.errors import IndexMismatch, IndexUnavailable
from lookalike.index.documents import Doc, Hit
from lookalike.index.graph import Graph, Source
from lookalike.settings import QUANTIZATIONS

logger = logging.getLogger(__name__)

SPACE = "cosinesimil"
EXACT_LIMIT = 20_000  # filtered searches over at most this many docs are exact
RERANK = 4  # a quantised graph proposes RERANK x k candidates for the exact re-ranking

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source TEXT, category TEXT, tags TEXT NOT NULL DEFAULT '[]',
    width INTEGER, height INTEGER, model TEXT NOT NULL, ingested_at TEXT,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS docs_category ON docs(category);
CREATE TABLE IF NOT EXISTS deleted (seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL);
"""
META_COLUMNS = "id, source, category, tags, width, height, model, ingested_at"


class EmbeddedIndex:
    def __init__(
        self, directory: Path, alias: str, model: str, dimension: int, m: int = 16,
        ef_construction: int = 100, ef_search: int = 128, quantization: str = "sq8",
    ) -> None:  # fmt: skip
        if quantization not in QUANTIZATIONS:  # Settings checks it too; this guards direct use
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
        self.model, self.dimension, self.quantization = model, dimension, quantization
        self.name = f"{alias}-{model}-{dimension}"
        self.path = Path(directory) / self.name
        self.m, self.ef_construction, self.ef_search = m, ef_construction, ef_search
        self._lock = threading.RLock()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path / "docs.sqlite", check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise IndexUnavailable(f"cannot open the embedded index at {self.path}: {exc}") from exc
        self._check_meta()
        self.graph = Graph(self.path, self.db, [Source("docs")], dimension, m, ef_construction, quantization)

    # -- identity ---------------------------------------------------------------------------
    def _check_meta(self) -> None:
        want = {"model": self.model, "dimension": str(self.dimension), "space": SPACE}
        have = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if not have:
            with self.db:
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", want.items())
            return
        diff = {key: (have.get(key), value) for key, value in want.items() if have.get(key) != value}
        if diff:
            detail = ", ".join(f"{key} is {old!r}, not {new!r}" for key, (old, new) in diff.items())
            raise IndexMismatch(f"embedded index {self.path} was built differently: {detail}")

    def describe(self) -> dict:
        return {"backend": "embedded", "index": self.name, "path": str(self.path), "model": self.model,
                "dimension": self.dimension, "space": SPACE, "quantization": self.graph_kind,
                "count": self.count()}  # fmt: skip

    def refresh(self) -> None:
        """Nothing to do: every search catches the graph up with SQLite first."""

    def flush(self) -> None:
        """Save the graph with the SQLite position it holds (atomic rename)."""
        with self._lock:
            self.graph.save()

    @property
    def graph_kind(self) -> str:
        """How the graph holds its vectors now: none, fp16 or sq8."""
        return self.graph.kind

    def close(self) -> None:
        with self._lock:
            self.flush()
            self.db.close()

    def ping(self) -> None:
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"embedded index unreadable: {exc}") from exc

    # -- writes -------------------------------------------------------------------------------
    def upsert(self, docs: list[Doc]) -> tuple[int, list[tuple[str, str]]]:
        """Write `docs` in one transaction; returns (written, [(id, reason)] failures)."""
        failures, rows = [], []
        for doc in docs:
            vector = np.asarray(doc.vector, dtype="<f4")
            if vector.shape != (self.dimension,):
                failures.append((doc.id, f"vector has {vector.shape[-1]} dimensions, the index {self.dimension}"))
            elif doc.model != self.model:
                failures.append((doc.id, f"vector is from {doc.model}, the index holds {self.model}"))
            elif not np.any(vector):
                failures.append((doc.id, "zero vector (cosine is undefined)"))
            else:
                rows.append((doc.id, doc.source, doc.category, json.dumps(doc.tags), doc.width, doc.height,
                             doc.model, doc.ingested_at, vector.tobytes()))  # fmt: skip
        with self._lock, self.db:
            ids = [(row[0],) for row in rows]
            self.db.executemany("INSERT INTO deleted (key) SELECT key FROM docs WHERE id = ?", ids)
            self.db.executemany("DELETE FROM docs WHERE id = ?", ids)
            self.db.executemany(f"INSERT INTO docs ({META_COLUMNS}, vector) VALUES (?,?,?,?,?,?,?,?,?)", rows)
        return len(rows), failures

    def delete(self, doc_id: str) -> bool:
        with self._lock, self.db:
            self.db.execute("INSERT INTO deleted (key) SELECT key FROM docs WHERE id = ?", (doc_id,))
            return self.db.execute("DELETE FROM docs WHERE id = ?", (doc_id,)).rowcount > 0

    # -- reads --------------------------------------------------------------------------------
    def existing(self, ids: Iterable[str]) -> set[str]:
        ids = list(ids)
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                found.update(row[0] for row in self.db.execute(f"SELECT id FROM docs WHERE id IN ({marks})", chunk))
        return found

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def categories(self) -> dict[str, int]:
        query = "SELECT category, COUNT(*) FROM docs WHERE category IS NOT NULL GROUP BY category ORDER BY 1"
        return {row[0]: int(row[1]) for row in self.db.execute(query)}

    def get(self, doc_id: str) -> Doc | None:
        row = self.db.execute(f"SELECT {META_COLUMNS}, vector FROM docs WHERE id = ?", (doc_id,)).fetchone()
        return _doc(row) if row else None

    def scan(self, batch: int = 1000) -> Iterator[Doc]:
        """Every document with its vector, in insertion order."""
        last = 0
        while True:
            rows = self.db.execute(
                f"SELECT key, {META_COLUMNS}, vector FROM docs WHERE key > ? ORDER BY key LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _doc(row[1:])
            last = rows[-1][0]

    def search(
        self, vector: np.ndarray, k: int = 10, category: str | None = None, tags: Iterable[str] = (),
        exclude_ids: Iterable[str] = (), min_similarity: float | None = None,
    ) -> list[Hit]:  # fmt: skip
        """The k nearest live docs by cosine, optionally within a category and having all `tags`."""
        xq = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        xq = xq / max(float(np.linalg.norm(xq)), 1e-12)  # cosine, whatever the query's norm
        tags, exclude_ids = list(tags), list(exclude_ids)
        with self._lock:
            self.graph.sync()
            wanted = k if self.graph_kind == "none" else RERANK * k
            excluded = frozenset(self._keys_of(exclude_ids))
            if category is not None or tags:
                allowed = self._filtered_keys(category, tags)
                if len(allowed) <= EXACT_LIMIT:
                    return self._hits(self.graph.nearest_of(xq[0], allowed, wanted), xq[0], k, min_similarity)
                found = self.graph.search(xq, wanted, self.ef_search, allowed=allowed, excluded=excluded)
            else:
                found = self.graph.search(xq, wanted, self.ef_search, excluded=excluded)
            return self._hits(found, xq[0], k, min_similarity)

    def _keys_of(self, ids: list[str]) -> set[int]:
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        return {row[0] for row in self.db.execute(f"SELECT key FROM docs WHERE id IN ({marks})", ids)}

    def _filtered_keys(self, category: str | None, tags: list[str]) -> list[int]:
        clauses, params = [], []
        if category is not None:
            clauses.append("category = ?")
            params.append(category)
        for tag in tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(docs.tags) WHERE value = ?)")
            params.append(tag)
        return [row[0] for row in self.db.execute(f"SELECT key FROM docs WHERE {' AND '.join(clauses)}", params)]

    def _hits(self, candidates: list[int], xq: np.ndarray, k: int, min_similarity: float | None) -> list[Hit]:
        """The best k of `candidates` (row keys) by exact cosine with `xq` [D], from the stored float32
        vectors; rows deleted meanwhile drop out."""
        if not candidates:
            return []
        marks = ",".join("?" * len(candidates))
        rows = self.db.execute(f"SELECT key, {META_COLUMNS}, vector FROM docs WHERE key IN ({marks})", candidates)
        found = []
        for row in rows:
            score = float(np.frombuffer(row[-1], dtype="<f4") @ xq)
            if min_similarity is None or score >= min_similarity:
                found.append((score, row[0], row[1:-1]))
        found.sort(key=lambda item: (-item[0], item[1]))
        return [Hit(row[0], min(1.0, score), _metadata(row)) for score, _, row in found[:k]]


def _metadata(row) -> dict:
    doc_id, source, category, tags, width, height, model, ingested_at = row
    return {"id": doc_id, "source": source, "category": category, "tags": json.loads(tags), "width": width,
            "height": height, "model": model, "ingested_at": ingested_at}  # fmt: skip


def _doc(row) -> Doc:
    meta = _metadata(row[:-1])
    return Doc(vector=np.frombuffer(row[-1], dtype="<f4").copy(), **meta)
