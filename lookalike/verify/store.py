"""Features of indexed images, kept where the index is: on OpenSearch in a companion index
`<alias>-features` that every API replica and `lookalike dedup` on any host share (the bytes in a
`binary` field: stored, never indexed); beside the embedded index, LOOKALIKE_DATA_DIR/<alias>.features.sqlite.

An image's features are written when its bytes are in hand (ingest, PUT /images), else made once
from its source (a local file, or an http(s) URL fetched within LOOKALIKE_MAX_IMAGE_BYTES) the first
time a search or de-duplication needs them, and kept. The most recently used are kept decoded in
memory too (LOOKALIKE_FEATURE_CACHE images), so a search that judges the same neighbours again reads
nothing. Size per image: docs/relevance.md. A source that cannot be read is reported, not raised.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.ingest import sources
from lookalike.settings import Settings
from lookalike.verify.features import Features, extract


class FeatureStore:
    """The cache and the make-on-first-need rule; a backend reads, writes and deletes the bytes."""

    def __init__(self, max_bytes: int, cached: int = Settings.feature_cache) -> None:
        self.max_bytes, self.cached = max_bytes, cached
        self._memory = OrderedDict[str, tuple[Features | None, str | None]]()
        self._memory_lock = threading.Lock()

    @classmethod
    def of(cls, settings: Settings) -> FeatureStore:
        """The store beside `settings`' index: OpenSearch's companion index, or the SQLite file."""
        if settings.opensearch_url:
            from lookalike.verify.opensearch_store import OpenSearchFeatures

            return OpenSearchFeatures(settings)
        return SqliteFeatures(Path(settings.data_dir), settings.alias, settings.max_image_bytes,
                              settings.feature_cache)  # fmt: skip

    # the backend's three calls
    def read(self, doc_id: str) -> bytes | None:
        raise NotImplementedError

    def write(self, doc_id: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, doc_id: str) -> None:
        raise NotImplementedError

    def write_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Many at once (ingest): (id, Features.to_bytes()) pairs."""
        for doc_id, data in items:
            self.write(doc_id, data)

    def close(self) -> None:
        with self._memory_lock:
            self._memory.clear()

    def put(self, doc_id: str, features: Features) -> None:
        self.write(doc_id, features.to_bytes())
        self._remember(doc_id, (features, None))

    def drop(self, doc_id: str) -> None:
        with self._memory_lock:
            self._memory.pop(doc_id, None)
        self.delete(doc_id)

    def get(self, doc_id: str, source: str | None) -> tuple[Features | None, str | None]:
        """(the image's features, None), made from `source` on first need; (None, why) when there are
        none and its source cannot be read."""
        with self._memory_lock:
            if doc_id in self._memory:
                self._memory.move_to_end(doc_id)
                return self._memory[doc_id]
        data = self.read(doc_id)
        if data is not None:
            found: tuple[Features | None, str | None] = (Features.from_bytes(data), None)
        elif not source or source.startswith("upload:"):
            found = (None, "no features stored and no source to make them from")
        else:
            try:
                features = extract(sources.read(sources.Item(source=source), self.max_bytes))
            except LookalikeError as exc:
                found = (None, f"its source cannot be read: {exc.reason}")  # remembered while cached
            else:
                self.write(doc_id, features.to_bytes())
                found = (features, None)
        self._remember(doc_id, found)
        return found

    def _remember(self, doc_id: str, found: tuple[Features | None, str | None]) -> None:
        with self._memory_lock:
            self._memory[doc_id] = found
            self._memory.move_to_end(doc_id)
            while len(self._memory) > self.cached:
                self._memory.popitem(last=False)


class SqliteFeatures(FeatureStore):
    """<folder>/<alias>.features.sqlite, opened on first use: nothing is made until a feature is."""

    def __init__(self, folder: Path, alias: str, max_bytes: int, cached: int = Settings.feature_cache) -> None:
        super().__init__(max_bytes, cached)
        self.path = folder / f"{alias}.features.sqlite"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS features (id TEXT PRIMARY KEY, data BLOB NOT NULL)")
            self._db = db
        return self._db

    def read(self, doc_id: str) -> bytes | None:
        with self._lock:
            row = self.db.execute("SELECT data FROM features WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else row[0]

    def write(self, doc_id: str, data: bytes) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO features VALUES (?, ?)", (doc_id, data))

    def write_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        with self._lock, self.db:
            self.db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?)", list(items))

    def delete(self, doc_id: str) -> None:
        if self._db is None and not self.path.exists():
            return  # nothing was ever stored
        with self._lock, self.db:
            self.db.execute("DELETE FROM features WHERE id = ?", (doc_id,))

    def close(self) -> None:
        super().close()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
