"""The embedded index's FAISS HNSW graph: a cache of the vectors SQLite holds, saved beside it.

The graph holds the vectors of one or more SQLite tables (`Source`: the table and the offset
added to its row keys to make graph ids, so the tables never share an id), L2-normalised, as
float32 (`none`), float16 (`fp16`), 8-bit codes (`sq8`) or 1-bit RaBitQ codes (`rabitq`).
rabitq walks the graph on one bit per dimension (plus two floats: ~170 bytes at 1280-d), each
comparison ~6x cheaper than sq8's; its distances are too rough to rank by, so the graph proposes
RABITQ_WIDEN times the candidates asked for and an 8-bit copy of every vector kept beside it
(`codes.faiss`) picks the best of them. (FAISS's HNSW over RaBitQ takes the L2 metric only, which
on unit vectors ranks as cosine does.) A trained kind (sq8, rabitq) stays float32 until the graph
holds TRAIN_SIZE vectors, then is rebuilt once from what it learnt of vectors spread over the table.
Once it holds PROJECT_SIZE vectors, a graph configured with a projection (`projection` > 0)
walks in the catalogue's own principal directions instead (lookalike.index.projection): it is
rebuilt once over each vector's coordinates along the top principal directions of a sample of
FIT_SAMPLE stored vectors (`projection` of them, or more where those keep less than KEEP of the
variance: lookalike.index.projection), and again whenever the vectors added since the fit have drifted out of
them. Whatever the graph holds, the index re-ranks its candidates on the full float32 vectors.
It is saved with the last row key of each table and the deletion seq it holds; on open, and
whenever another process wrote, it catches up from SQLite instead of rebuilding. Deleted rows
(the `deleted` table, by graph id) are tombstones that searches exclude.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from lookalike.index import hugepages
from lookalike.index.projection import KEEP, Projection
from lookalike.index.vectors import NAME as VECTORS
from lookalike.index.vectors import VectorFile

SEARCH_THREADS = 1  # OpenMP threads per FAISS search (one_thread)

logger = logging.getLogger(__name__)

CODECS = {"fp16": faiss.ScalarQuantizer.QT_fp16, "sq8": faiss.ScalarQuantizer.QT_8bit}  # and none: float32
TRAINED = ("sq8", "rabitq")  # kinds that learn from the data first (a smaller graph is float32)
CATCH_UP_BYTES = 512 * 2**20  # float32 vectors per add when the graph catches up (105k rows at 1280-d)
RABITQ_WIDEN = 5  # rabitq: the graph proposes 5x the candidates asked for; the sq8 copy keeps the best
RECONSTRUCT = 4096  # vectors decoded at once by an exact filtered search: 32 MB at 2048-d, whatever the filter
TRAIN_SIZE = 10_000  # sq8 learns each dimension's range from this many vectors; a smaller graph stays float32
PROJECT_SIZE = 50_000  # a graph this large walks in the catalogue's principal directions (docs/constants.md)
FIT_SAMPLE = 50_000  # vectors, spread over the table, that the principal directions are fitted on


@dataclass(frozen=True)
class Source:
    table: str  # with columns key INTEGER PRIMARY KEY and vector BLOB (float32 little-endian)
    offset: int = 0  # graph id = offset + key


class Graph:
    def __init__(self, path: Path, db: sqlite3.Connection, sources: list[Source], dimension: int, m: int,
                 ef_construction: int, quantization: str, projection: int = 0) -> None:  # fmt: skip
        """`projection`: the fewest directions of the reduced walk once the graph holds PROJECT_SIZE
        vectors (0, or not below `dimension`: always the full vectors)."""
        self.path, self.db, self.sources = path, db, sources
        self.dimension, self.m, self.ef_construction, self.quantization = dimension, m, ef_construction, quantization
        self.reduce_to = projection if 0 < projection < dimension else 0
        self._backed: tuple[faiss.Index, int] | None = None  # the graph, and its size, last given huge pages
        self._load()

    # -- state ------------------------------------------------------------------------------------
    @property
    def walk_dimension(self) -> int:
        """The length of the vectors the graph holds: the projection's, or the full dimension."""
        return self.projection.dimension if self.projection is not None else self.dimension

    @property
    def metric(self) -> int:
        """Inner product on unit vectors; L2 on projected coordinates (centring keeps distances only)."""
        return faiss.METRIC_L2 if self.projection is not None else faiss.METRIC_INNER_PRODUCT

    def _new(self, kind: str) -> faiss.Index:
        hnsw: faiss.Index
        d = self.walk_dimension
        if kind == "none":
            hnsw = faiss.IndexHNSWFlat(d, self.m, self.metric)
        elif kind == "rabitq":
            hnsw = faiss.IndexHNSWRaBitQ(d, self.m)  # L2: on unit vectors, the cosine order
        else:  # faiss's stubs type the codec as a ScalarQuantizer; SWIG takes its QT_* constant
            hnsw = faiss.IndexHNSWSQ(d, CODECS[kind], self.m, self.metric)  # type: ignore[arg-type]
        hnsw.hnsw.efConstruction = self.ef_construction
        return faiss.IndexIDMap2(hnsw)

    def _new_codes(self, kind: str) -> faiss.Index | None:
        """rabitq's 8-bit copy of each vector, by graph id, that ranks what the graph proposes."""
        if kind != "rabitq":
            return None
        flat = faiss.IndexScalarQuantizer(self.walk_dimension, CODECS["sq8"], self.metric)
        return faiss.IndexIDMap2(flat)

    def _reset(self, kind: str, projection: Projection | None = None) -> None:
        self.projection = projection
        self.index, self.codes, self.kind = self._new(kind), self._new_codes(kind), kind
        self.max_keys = {source.table: 0 for source in self.sources}
        self.deleted_seq = 0
        self.tombstones: set[int] = set()

    def _load(self) -> None:
        graph_file, state_file = self.path / "graph.faiss", self.path / "graph.json"
        self._reset("none" if self.quantization in TRAINED else self.quantization)
        copied = 0  # the last key the vector file holds every row up to, as last saved
        if graph_file.exists() and state_file.exists():
            try:
                state = json.loads(state_file.read_text())
                copied = int(state.get("vectors_upto", 0))
                kind = state.get("quantization", "none")
                projection = None
                if "projection" in state:
                    projection = Projection.load(self.path / "projection.npz", state["projection"])
                if projection is not None and projection.asked != self.reduce_to:
                    logger.warning("rebuilding the graph of %s: it was fitted for %d directions, not %s", self.path,
                                   projection.asked, self.reduce_to or "full vectors")  # fmt: skip
                elif projection is not None and projection.short_of(KEEP):
                    logger.warning("rebuilding the graph of %s: its %d directions keep %.3f of the variance, less "
                                   "than %.2f", self.path, projection.dimension, projection.kept, KEEP)  # fmt: skip
                elif kind == self.quantization or (self.quantization in TRAINED and kind == "none"):
                    self.index, self.codes, self.kind = faiss.read_index(str(graph_file)), None, kind
                    self.projection = projection
                    if kind == "rabitq":
                        self.codes = faiss.read_index(str(self.path / "codes.faiss"))
                        if self.codes.ntotal != self.index.ntotal:  # a save cut short between the two files
                            raise ValueError(f"codes.faiss holds {self.codes.ntotal} vectors, the graph "
                                             f"{self.index.ntotal}")  # fmt: skip
                    saved = state.get("max_keys", {"docs": state.get("max_key", 0)})
                    self.max_keys = {source.table: int(saved.get(source.table, 0)) for source in self.sources}
                    self.deleted_seq = state["deleted_seq"]
                    self.tombstones = set(state.get("tombstones", []))
                else:
                    logger.warning("rebuilding the graph of %s as %s (it was saved as %s)", self.path,
                                   self.quantization, kind)  # fmt: skip
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                logger.warning("rebuilding the graph of %s: %s", self.path, exc)
                self._reset("none" if self.quantization in TRAINED else self.quantization)
        self.vectors = VectorFile(self.path / VECTORS, self.dimension, copied)
        self.sync()

    def save(self) -> None:
        """Write the graph (and rabitq's codes, the projection) and the SQLite position it holds
        (atomic renames; graph.json last, naming the projection's fit)."""
        self.sync()
        if self.projection is not None:
            self.projection.save(self.path / "projection.npz")
        if self.codes is not None:  # before the graph: a graph that is newer than its codes is rebuilt on open
            faiss.write_index(self.codes, str(self.path / "codes.faiss.tmp"))
            (self.path / "codes.faiss.tmp").replace(self.path / "codes.faiss")
        tmp = self.path / "graph.faiss.tmp"
        faiss.write_index(self.index, str(tmp))
        tmp.replace(self.path / "graph.faiss")
        self.vectors.sync()  # durable before graph.json says how far it holds
        state = {"max_keys": self.max_keys, "deleted_seq": self.deleted_seq, "quantization": self.kind,
                 "tombstones": sorted(self.tombstones), "vectors_upto": self.vectors.upto}  # fmt: skip
        if self.projection is not None:
            state["projection"] = self.projection.state()
        (self.path / "graph.json.tmp").write_text(json.dumps(state))
        (self.path / "graph.json.tmp").replace(self.path / "graph.json")

    # -- catching up with SQLite ------------------------------------------------------------------
    def sync(self) -> None:
        """Catch up with rows other writers (or a killed run) committed; quantise, project, refit
        (each a rebuild) when due."""
        kind, projection = self._due()
        if kind != self.kind or projection is not self.projection:
            self._reset(kind, projection)
        if not self.index.is_trained:
            self._train()
            if not self.index.is_trained:  # its rows were deleted meanwhile: float32 until there are more
                self._reset("none")
        for source in self.sources:
            self._catch_up(source)
        if self._backed != (self.index, self.index.ntotal):  # loaded, rebuilt or grown: its arrays may have moved
            hugepages.back(self.index)
            self._backed = (self.index, self.index.ntotal)
        watermarks = [(source.offset, self.max_keys[source.table]) for source in self.sources]
        for seq, graph_id in self.db.execute("SELECT seq, key FROM deleted WHERE seq > ?", (self.deleted_seq,)):
            # An id above its table's watermark was never added.
            if any(offset <= graph_id <= offset + top for offset, top in watermarks):
                self.tombstones.add(graph_id)
            self.deleted_seq = seq

    def _due(self) -> tuple[str, Projection | None]:
        """The kind and projection the graph should have now, from its size with the rows pending."""
        if self.projection is not None:
            if not self.projection.drifted():
                return self.kind, self.projection
            share = self.projection.seen_share or 0.0
            logger.info("refitting the graph of %s: %d vectors added since its fit keep %.3f of their variance "
                        "in it, its sample %.3f", self.path, self.projection.seen, share,
                        self.projection.kept)  # fmt: skip
            return self.kind, self._fit()
        if self.kind == self.quantization and not self.reduce_to:
            return self.kind, None
        limit = max(TRAIN_SIZE, PROJECT_SIZE)
        pending = 0
        for source in self.sources:
            query = f"SELECT COUNT(*) FROM (SELECT 1 FROM {source.table} WHERE key > ? LIMIT ?)"
            pending += self.db.execute(query, (self.max_keys[source.table], limit)).fetchone()[0]
        size = self.index.ntotal - len(self.tombstones) + pending
        kind = self.quantization if size >= TRAIN_SIZE else self.kind
        if kind != self.kind:
            logger.info("quantising the graph of %s (%s)", self.path, self.quantization)
        if self.reduce_to and size >= PROJECT_SIZE:
            logger.info("projecting the graph of %s onto its principal directions (%d or more)", self.path,
                        self.reduce_to)  # fmt: skip
            return kind, self._fit()
        return kind, None

    def _sample(self, size: int) -> np.ndarray:
        """Up to `size` unit vectors [n, D] spread evenly over the first table (not only the first
        written, which may all be one category)."""
        table = self.sources[0].table
        top = self.db.execute(f"SELECT MAX(key) FROM {table}").fetchone()[0] or 0
        query = f"SELECT vector FROM {table} WHERE key % ? = 0 LIMIT ?"
        rows = self.db.execute(query, (max(1, -(-top // size)), size))  # a step rounded up: to the last rows
        blobs = [np.frombuffer(blob, dtype="<f4") for (blob,) in rows]
        return unit(np.stack(blobs)) if blobs else np.empty((0, self.dimension), dtype=np.float32)

    def _fit(self) -> Projection:
        """A projection fitted on FIT_SAMPLE stored vectors; what is added after the last keys now is
        measured against it."""
        started = time.monotonic()
        population = sum(self.db.execute(f"SELECT COUNT(*) FROM {source.table}").fetchone()[0]
                         for source in self.sources)  # fmt: skip
        projection = Projection.fit(self._sample(FIT_SAMPLE), self.reduce_to, population, keep=KEEP)
        projection.marks = {source.table: self.db.execute(f"SELECT COALESCE(MAX(key), 0) FROM {source.table}")
                            .fetchone()[0] for source in self.sources}  # fmt: skip
        logger.info("fitted %d principal directions of %s in %.1f s: they keep %.3f of its variance",
                    projection.dimension, self.path, time.monotonic() - started, projection.kept)  # fmt: skip
        return projection

    def _train(self) -> None:
        """Learn sq8's ranges (rabitq's centre) from TRAIN_SIZE vectors spread over the first table,
        as the graph holds them (projected, if it is)."""
        sample = self._sample(TRAIN_SIZE)
        if len(sample):
            if self.projection is not None:
                sample = self.projection.apply(sample)
            self.index.train(sample)
            if self.codes is not None:
                self.codes.train(sample)

    def _catch_up(self, source: Source) -> None:
        """Add the rows committed since the graph's watermark, CATCH_UP_BYTES of vectors per add:
        FAISS inserts a batch level by level, and small batches made a worse graph (1-bit RaBitQ,
        300k vectors, recall@10 at efSearch 256: 0.985 in batches of 4,096, 0.994 of 100,000).
        The first table's rows also go to the vector file, from its own watermark (which a rebuilt
        graph does not reset)."""
        rows = max(4096, CATCH_UP_BYTES // (4 * self.dimension))
        block: np.ndarray | None = None  # made at the first row (most searches find none); pages touched as filled
        keys: list[int] = []
        copying = source == self.sources[0]
        start = min(self.max_keys[source.table], self.vectors.upto) if copying else self.max_keys[source.table]
        query = f"SELECT key, vector FROM {source.table} WHERE key > ? ORDER BY key"
        started = reported = time.monotonic()
        added = 0
        for key, blob in self.db.execute(query, (start,)):
            if block is None:
                block = np.empty((rows, self.dimension), dtype=np.float32)
            block[len(keys)] = np.frombuffer(blob, dtype="<f4")
            keys.append(key)
            if len(keys) == rows:
                self._take(source, keys, block, copying)
                added += len(keys)
                keys = []
                if time.monotonic() - reported > 30:  # a large catch-up (a rebuild) takes minutes
                    rate = added / (time.monotonic() - started)
                    logger.info("graph of %s: %d vectors added (%.0f/s)", self.path, added, rate)
                    reported = time.monotonic()
        if keys and block is not None:
            self._take(source, keys, block[: len(keys)], copying)

    def _take(self, source: Source, keys: list[int], block: np.ndarray, copying: bool) -> None:
        """Rows read from `source`: those past the vector file's watermark to the file (as stored),
        those past the graph's to the graph."""
        ordered = np.asarray(keys, dtype=np.int64)
        if copying:
            fresh = ordered > self.vectors.upto
            self.vectors.write(ordered[fresh], block[fresh] if not fresh.all() else block)
        new = ordered > self.max_keys[source.table]
        if new.all():
            self._add(source, keys, block)
        elif new.any():
            self._add(source, ordered[new].tolist(), block[new])

    def _add(self, source: Source, keys: list[int], vectors: np.ndarray) -> None:
        """Add `vectors` [len(keys), D] (normalised in place) under the graph ids of `keys`."""
        ids = np.asarray(keys, dtype=np.int64) + source.offset
        vectors = unit(vectors)
        if self.projection is not None:
            walk = self.projection.apply(vectors)
            fresh = np.asarray(keys) > self.projection.marks.get(source.table, 0)  # added since the fit
            if fresh.any():
                self.projection.observe(vectors[fresh], walk[fresh])
            vectors = walk
        self.index.add_with_ids(vectors, ids)
        if self.codes is not None:
            self.codes.add_with_ids(vectors, ids)
        self.max_keys[source.table] = max(self.max_keys[source.table], keys[-1])

    # -- search -----------------------------------------------------------------------------------
    def search(self, xq: np.ndarray, n: int, ef_search: int, allowed: np.ndarray | None = None,
               excluded: frozenset[int] = frozenset(), below: int | None = None) -> list[int]:  # fmt: skip
        """Up to `n` graph ids nearest to `xq` [1, D] by the graph's (approximate) inner product:
        among `allowed` ids (int64) if given, never a tombstone or one of `excluded`, and only ids under
        `below` if given (one source's range)."""
        dropped = excluded | self.tombstones
        proposed = n * RABITQ_WIDEN if self.codes is not None else n
        selector: faiss.IDSelector | None = None
        if allowed is not None:  # int64 ids, minus the dropped ones, without a Python set of every allowed id
            kept = allowed[~np.isin(allowed, ids_array(dropped))] if dropped else allowed
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(kept, dtype=np.int64))
            extra = 0
        elif len(dropped) <= proposed:  # asking for that many more and dropping them after is cheaper than a
            extra = len(dropped)  # selector asked of every candidate (0.3 of 1.6 ms at 1M: docs/operations.md)
        else:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(ids_array(dropped)))
            extra = 0
        if below is not None:
            within = faiss.IDSelectorRange(0, below)  # kept alive by this frame until the search ends
            selector = within if selector is None else faiss.IDSelectorAnd(within, selector)
        asked = proposed + extra
        # SearchParametersHNSW is made by SWIG and missing from faiss's type stubs.
        params = faiss.SearchParametersHNSW(efSearch=max(ef_search, asked))  # type: ignore[attr-defined]
        if selector is not None:
            params.sel = selector
        walk = xq if self.projection is None else self.projection.apply(xq)
        with one_thread():
            _, ids = self.index.search(walk, asked, params=params)
        found = [int(i) for i in ids[0] if i >= 0 and (not extra or int(i) not in dropped)][:proposed]
        return found if self.codes is None else self.nearest_of(xq[0], found, n)

    def nearest_of(self, xq: np.ndarray, ids: list[int], n: int) -> list[int]:
        """The `n` of `ids` nearest to `xq` [D] by the graph's own copy of their vectors (exact over them;
        rabitq's from its 8-bit codes; a projected graph's by L2 between projections)."""
        candidates = ids_array(set(ids) - self.tombstones)
        if not len(candidates):
            return []
        copy = self.codes if self.codes is not None else self.index
        walk = xq if self.projection is None else self.projection.apply(xq[None])[0]
        scores = np.concatenate([score(copy.reconstruct_batch(candidates[start : start + RECONSTRUCT]), walk,
                                       self.projection is not None)
                                 for start in range(0, len(candidates), RECONSTRUCT)])  # fmt: skip
        return candidates[np.argsort(-scores)[:n]].tolist()

    def close(self) -> None:
        self.vectors.close()

    def describe(self) -> dict:
        """How the graph walks: its kind, and the projection if it has one."""
        return {
            "quantization": self.kind,
            "vectors": int(self.index.ntotal),
            "projection": None if self.projection is None else self.projection.describe(),
        }


def score(vectors: np.ndarray, xq: np.ndarray, projected: bool) -> np.ndarray:
    """Higher is nearer: inner product on unit vectors, minus squared L2 on projections."""
    return -np.square(vectors - xq).sum(axis=1) if projected else vectors @ xq


def unit(vectors: np.ndarray) -> np.ndarray:
    """The rows scaled to norm 1, in place when they are float32 already (the graph ranks by
    direction, as cosine does, whatever the norm stored)."""
    vectors = vectors.astype(np.float32, copy=False)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


def ids_array(ids) -> np.ndarray:
    return np.asarray(sorted(ids), dtype=np.int64)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run FAISS on SEARCH_THREADS OpenMP threads: one query gains nothing from more, and when
    TorchServe keeps the cores busy an idle OpenMP thread waits for one (docs/constants.md)."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(SEARCH_THREADS)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)
