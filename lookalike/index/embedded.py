"""The embedded index: SQLite (documents, metadata, vectors; the source of truth) + a FAISS HNSW graph.

No server needed. The graph holds its vectors as float32 (`none`), float16 (`fp16`) or 8-bit
scalar codes (`sq8`, 4x smaller: 1M 2048-d vectors fit in ~2.3 GB of memory); whatever the
graph holds, its candidates are re-ranked by exact cosine on the float32 vectors as stored (read
from the graph's copy of them, lookalike.index.vectors: page cache, not process memory), so
scores and thresholds never depend on the choice.

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
from lookalike_handler.regions import SCHEMES

from lookalike.errors import IndexMismatch, IndexUnavailable
from lookalike.index.documents import Doc, Hit, Region, scheme_mismatch
from lookalike.index.graph import Graph, Source
from lookalike.index.tuning import Tuning
from lookalike.settings import QUANTIZATIONS

logger = logging.getLogger(__name__)

SPACE = "cosinesimil"
M, EF_CONSTRUCTION = 32, 320  # the graph's build, chosen by lookalike bench index (docs/constants.md)
PROJECTION = 128  # the fewest principal directions a graph of PROJECT_SIZE vectors or more walks in (docs/constants.md)
EXACT_LIMIT = 20_000  # filtered searches over at most this many docs are exact

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
CREATE TABLE IF NOT EXISTS regions (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    doc INTEGER NOT NULL,
    box TEXT NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS regions_doc ON regions(doc);
CREATE TABLE IF NOT EXISTS deleted (seq INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL);
"""
IN_CHUNK = 500  # values per SQL `IN (...)` list: far below SQLite's bound-parameter limit (999 in older builds)
REGION_IDS = 1 << 40  # graph id of region row r: REGION_IDS + r (a doc's is its own key)
META_COLUMNS = "id, source, category, tags, width, height, model, ingested_at"


class EmbeddedIndex:
    def __init__(
        self, directory: Path, alias: str, model: str, dimension: int, m: int = M,
        ef_construction: int = EF_CONSTRUCTION, ef_search: int = 128, quantization: str = "sq8", regions: str = "none",
        rerank: int = 4, projection: int = PROJECTION,
    ) -> None:  # fmt: skip
        if quantization not in QUANTIZATIONS:  # Settings checks it too; this guards direct use
            raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
        if regions not in SCHEMES:
            raise ValueError(f"regions must be one of {', '.join(SCHEMES)}, not {regions!r}")
        self.model, self.dimension, self.quantization, self.regions = model, dimension, quantization, regions
        self.name = f"{alias}-{model}-{dimension}"
        self.path = Path(directory) / self.name
        self.m, self.ef_construction = m, ef_construction
        self.rerank = rerank  # a quantised graph proposes rerank x k candidates for the exact re-ranking
        self._lock = threading.RLock()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path / "docs.sqlite", check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise IndexUnavailable(f"cannot open the embedded index at {self.path}: {exc}") from exc
        self._check_meta()
        # efSearch: recorded by lookalike admin recall --target (SQLite's meta), else the configured one
        self.tuning = Tuning(self._recorded_tuning, self._write_tuning, ef_search, "settings (LOOKALIKE_EF_SEARCH)")
        sources = [Source("docs"), Source("regions", REGION_IDS)]
        self.graph = Graph(self.path, self.db, sources, dimension, m, ef_construction, quantization, projection)

    # -- identity ---------------------------------------------------------------------------
    def _check_meta(self) -> None:
        want = {"model": self.model, "dimension": str(self.dimension), "space": SPACE, "regions": self.regions}
        have = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if not have:
            with self.db:
                self.db.executemany("INSERT INTO meta VALUES (?, ?)", want.items())
            return
        if "regions" not in have:  # made before region vectors existed: it holds none
            have["regions"] = "none"
            with self.db:
                self.db.execute("INSERT INTO meta VALUES ('regions', 'none')")
        diff = {key: (have.get(key), value) for key, value in want.items() if have.get(key) != value}
        if diff:
            detail = ", ".join(f"{key} is {old!r}, not {new!r}" for key, (old, new) in diff.items())
            raise IndexMismatch(f"embedded index {self.path} was built differently: {detail}")

    def _recorded_tuning(self) -> dict | None:
        with self._lock:
            row = self.db.execute("SELECT value FROM meta WHERE key = 'recall'").fetchone()
        return json.loads(row[0]) if row else None

    def _write_tuning(self, summary: dict) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('recall', ?)", (json.dumps(summary),))

    def describe(self) -> dict:
        return {"backend": "embedded", "index": self.name, "path": str(self.path), "model": self.model,
                "dimension": self.dimension, "space": SPACE, "quantization": self.graph_kind,
                "projection": self.graph.describe()["projection"],
                "regions": self.regions, "count": self.count(),
                **self.tuning.describe()}  # fmt: skip

    def refresh(self) -> None:
        """Nothing to do: every search catches the graph up with SQLite first."""

    def flush(self) -> None:
        """Save the graph with the SQLite position it holds (atomic rename)."""
        with self._lock:
            self.graph.save()

    @property
    def graph_kind(self) -> str:
        """How the graph holds its vectors now: none, fp16, sq8 or rabitq."""
        return self.graph.kind

    def close(self) -> None:
        with self._lock:
            self.flush()
            self.graph.close()
            self.db.close()

    def ping(self) -> None:
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise IndexUnavailable(f"embedded index unreadable: {exc}") from exc

    # -- writes -------------------------------------------------------------------------------
    def upsert(self, docs: list[Doc]) -> tuple[int, list[tuple[str, str]]]:
        """Write `docs` (and their region vectors) in one transaction; (written, [(id, reason)] failures)."""
        failures, accepted = [], []
        for doc in docs:
            vector = np.asarray(doc.vector, dtype="<f4")
            if vector.shape != (self.dimension,):
                failures.append((doc.id, f"vector has {vector.shape[-1]} dimensions, the index {self.dimension}"))
            elif doc.model != self.model:
                failures.append((doc.id, f"vector is from {doc.model}, the index holds {self.model}"))
            elif not np.any(vector):
                failures.append((doc.id, "zero vector (cosine is undefined)"))
            elif (mismatch := scheme_mismatch(doc, self.regions)) is not None:
                failures.append((doc.id, mismatch))
            else:
                accepted.append((doc, vector))
        with self._lock, self.db:
            for doc, vector in accepted:
                self._remove(doc.id)
                key = self.db.execute(
                    f"INSERT INTO docs ({META_COLUMNS}, vector) VALUES (?,?,?,?,?,?,?,?,?)",
                    (doc.id, doc.source, doc.category, json.dumps(doc.tags), doc.width, doc.height, doc.model,
                     doc.ingested_at, vector.tobytes()),
                ).lastrowid  # fmt: skip
                self.db.executemany("INSERT INTO regions (doc, box, vector) VALUES (?, ?, ?)",
                                    [(key, json.dumps(list(box)), np.asarray(v, dtype="<f4").tobytes())
                                     for box, v in doc.regions])  # fmt: skip
        return len(accepted), failures

    def _remove(self, doc_id: str) -> bool:
        """Delete a document and its regions, recording their graph ids as tombstones (in a transaction)."""
        row = self.db.execute("SELECT key FROM docs WHERE id = ?", (doc_id,)).fetchone()
        if row is None:
            return False
        self.db.execute("INSERT INTO deleted (key) VALUES (?)", (row[0],))
        self.db.execute("INSERT INTO deleted (key) SELECT ? + key FROM regions WHERE doc = ?", (REGION_IDS, row[0]))
        self.db.execute("DELETE FROM regions WHERE doc = ?", (row[0],))
        self.db.execute("DELETE FROM docs WHERE key = ?", (row[0],))
        return True

    def delete(self, doc_id: str) -> bool:
        with self._lock, self.db:
            return self._remove(doc_id)

    # -- reads --------------------------------------------------------------------------------
    def _rows_in(self, query: str, values: list) -> Iterator[tuple]:
        """The rows of `query`, whose `{marks}` stands for an `IN` list of `values`, IN_CHUNK at a time."""
        for start in range(0, len(values), IN_CHUNK):
            chunk = values[start : start + IN_CHUNK]
            yield from self.db.execute(query.format(marks=_marks(chunk)), chunk)

    def existing(self, ids: Iterable[str]) -> set[str]:
        with self._lock:
            return {row[0] for row in self._rows_in("SELECT id FROM docs WHERE id IN ({marks})", list(ids))}

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def categories(self) -> dict[str, int]:
        query = "SELECT category, COUNT(*) FROM docs WHERE category IS NOT NULL GROUP BY category ORDER BY 1"
        return {row[0]: int(row[1]) for row in self.db.execute(query)}

    def get(self, doc_id: str) -> Doc | None:
        row = self.db.execute(f"SELECT key, {META_COLUMNS}, vector FROM docs WHERE id = ?", (doc_id,)).fetchone()
        return self._doc(row, self._regions_of([row[0]])) if row else None

    def scan(self, batch: int = 1000) -> Iterator[Doc]:
        """Every document with its vector (and region vectors), in insertion order."""
        last = 0
        while True:
            rows = self.db.execute(
                f"SELECT key, {META_COLUMNS}, vector FROM docs WHERE key > ? ORDER BY key LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            regions = self._regions_of([row[0] for row in rows])
            for row in rows:
                yield self._doc(row, regions)
            last = rows[-1][0]

    def _regions_of(self, keys: list[int]) -> dict[int, list[Region]]:
        found: dict[int, list[Region]] = {}
        if self.regions == "none":
            return found
        for doc, box, blob in self._rows_in("SELECT doc, box, vector FROM regions WHERE doc IN ({marks}) ORDER BY key",
                                            keys):  # fmt: skip
            found.setdefault(doc, []).append((tuple(json.loads(box)), np.frombuffer(blob, dtype="<f4").copy()))
        return found

    def _doc(self, row, regions: dict[int, list[Region]]) -> Doc:
        """A Doc from a (key, metadata columns..., vector) row and the regions by doc key."""
        doc = _doc(row[1:])
        doc.region_scheme, doc.regions = self.regions, regions.get(row[0], [])
        return doc

    def search(
        self, vector: np.ndarray, k: int = 10, *, category: str | None = None, tags: Iterable[str] = (),
        exclude_ids: Iterable[str] = (), min_similarity: float | None = None, by_regions: bool = True,
        ef_search: int | None = None,
    ) -> list[Hit]:  # fmt: skip
        """The k nearest live docs by cosine, optionally within a category and having all `tags`; a doc
        scores by its best vector, its regions' too unless `by_regions` is False (whole vectors only).
        `ef_search`: this request's HNSW candidate list (default: the recorded or configured one)."""
        ef = ef_search or self.tuning.ef_search
        xq = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        xq = xq / max(float(np.linalg.norm(xq)), 1e-12)  # cosine, whatever the query's norm
        tags, exclude_ids = list(tags), list(exclude_ids)
        with self._lock:
            self.graph.sync()
            by_regions = by_regions and self.regions != "none"
            per_image = 1 + len(SCHEMES[self.regions]) if by_regions else 1  # graph vectors an image takes part with
            exact = self.graph_kind == "none" and self.graph.projection is None  # the graph's own order is exact
            wanted = (k if exact else self.rerank * k) * per_image
            below = None if by_regions or self.regions == "none" else REGION_IDS  # whole vectors only
            excluded = frozenset(self._graph_ids(self._keys_of(exclude_ids)))
            if category is not None or tags:
                keys = self._filtered_keys(category, tags)
                allowed = np.asarray(self._graph_ids(keys.tolist()), dtype=np.int64) if by_regions else keys
                if len(allowed) <= EXACT_LIMIT * per_image:
                    found = self.graph.nearest_of(xq[0], [i for i in allowed.tolist() if i not in excluded], wanted)
                    return self._hits(found, xq[0], k, min_similarity)
                found = self.graph.search(xq, wanted, ef, allowed=allowed, excluded=excluded)
            else:
                found = self.graph.search(xq, wanted, ef, excluded=excluded, below=below)
            return self._hits(found, xq[0], k, min_similarity)

    def _graph_ids(self, keys) -> list[int]:
        """The graph ids of documents `keys`: their own, and their regions'."""
        ids = list(keys)
        if self.regions != "none" and ids:
            ids += [REGION_IDS + row[0] for row in self._rows_in("SELECT key FROM regions WHERE doc IN ({marks})", ids)]
        return ids

    def _keys_of(self, ids: list[str]) -> set[int]:
        return {row[0] for row in self._rows_in("SELECT key FROM docs WHERE id IN ({marks})", ids)}

    def _filtered_keys(self, category: str | None, tags: list[str]) -> np.ndarray:
        """The keys of the documents that pass the filters, int64 (8 bytes each, whatever their number)."""
        clauses, params = [], []
        if category is not None:
            clauses.append("category = ?")
            params.append(category)
        for tag in tags:
            clauses.append("EXISTS (SELECT 1 FROM json_each(docs.tags) WHERE value = ?)")
            params.append(tag)
        rows = self.db.execute(f"SELECT key FROM docs WHERE {' AND '.join(clauses)}", params)
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def _hits(self, candidates: list[int], xq: np.ndarray, k: int, min_similarity: float | None) -> list[Hit]:
        """The best k images among `candidates` (graph ids: documents and regions) by exact cosine with
        `xq` [D] on the stored float32 vectors; an image scores by its best vector, and a hit carries
        the box of the region that won. Only the winners' metadata is read. Rows deleted meanwhile
        drop out."""
        best: dict[int, tuple[float, tuple | None]] = {}

        def consider(doc: int, score: float, box: tuple | None) -> None:
            if doc not in best or score > best[doc][0]:
                best[doc] = (score, box)

        docs = [c for c in candidates if c < REGION_IDS]
        regions = [c - REGION_IDS for c in candidates if c >= REGION_IDS]
        copied = [key for key in docs if key <= self.graph.vectors.upto]  # all of them, once the graph is synced
        if copied:
            for key, score in zip(copied, (self.graph.vectors.read(copied) @ xq).tolist(), strict=True):
                consider(key, score, None)
        rest = [key for key in docs if key > self.graph.vectors.upto]
        rows = list(self._rows_in("SELECT key, vector FROM docs WHERE key IN ({marks})", rest))
        for (key, _), score in zip(rows, scores_of([row[-1] for row in rows], xq), strict=True):
            consider(key, score, None)
        rows = list(self._rows_in("SELECT doc, box, vector FROM regions WHERE key IN ({marks})", regions))
        for (doc, box, _), score in zip(rows, scores_of([row[-1] for row in rows], xq), strict=True):
            consider(doc, score, tuple(json.loads(box)))
        order = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
        ranked = [(key, score, box) for key, (score, box) in order if min_similarity is None or score >= min_similarity]
        query = f"SELECT key, {META_COLUMNS} FROM docs WHERE key IN ({{marks}})"
        hits: list[Hit] = []
        while ranked and len(hits) < k:  # a key deleted since the graph caught up has no row: the next one steps up
            wanted, ranked = ranked[: k - len(hits)], ranked[k - len(hits) :]
            meta = {row[0]: _metadata(row[1:]) for row in self._rows_in(query, [key for key, _, _ in wanted])}
            hits += [Hit(meta[key]["id"], min(1.0, score), meta[key], box) for key, score, box in wanted if key in meta]
        return hits


def scores_of(blobs: list[bytes], xq: np.ndarray) -> list[float]:
    """The dot product of each stored float32 vector (`blobs`, each of len(xq) floats) with `xq`."""
    if not blobs:
        return []
    return (np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), -1) @ xq).tolist()


def _marks(values: list) -> str:
    return ",".join("?" * len(values))


def _metadata(row) -> dict:
    doc_id, source, category, tags, width, height, model, ingested_at = row
    return {"id": doc_id, "source": source, "category": category, "tags": json.loads(tags), "width": width,
            "height": height, "model": model, "ingested_at": ingested_at}  # fmt: skip


def _doc(row) -> Doc:
    meta = _metadata(row[:-1])
    return Doc(vector=np.frombuffer(row[-1], dtype="<f4").copy(), **meta)
