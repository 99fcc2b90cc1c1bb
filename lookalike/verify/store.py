"""Features of indexed images, kept beside the index: LOOKALIKE_HOME/features/<alias>.sqlite.

An image's features are made when its bytes are in hand (PUT /images), else once from its source
(a local file, or an http(s) URL fetched within LOOKALIKE_MAX_IMAGE_BYTES) the first time a search
or de-duplication needs them, and kept: ~70 KB per image (median over the bundled photos; 443
keypoints), so ~70 GB per million images. A source that cannot be read is reported, not raised.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.ingest import sources
from lookalike.settings import Settings
from lookalike.verify.features import Features, extract


class FeatureStore:
    """Opened on first use: an API that is never asked to verify never touches the folder."""

    def __init__(self, folder: Path, alias: str, max_bytes: int) -> None:
        self.path, self.max_bytes = folder / f"{alias}.sqlite", max_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    @classmethod
    def of(cls, settings: Settings) -> FeatureStore:
        """The store of `settings`' alias under its LOOKALIKE_HOME."""
        return cls(settings.home / "features", settings.alias, settings.max_image_bytes)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS features (id TEXT PRIMARY KEY, data BLOB NOT NULL)")
            self._db = db
        return self._db

    def put(self, doc_id: str, features: Features) -> None:
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO features VALUES (?, ?)", (doc_id, features.to_bytes()))

    def drop(self, doc_id: str) -> None:
        if self._db is None and not self.path.exists():
            return  # nothing was ever stored
        with self._lock, self.db:
            self.db.execute("DELETE FROM features WHERE id = ?", (doc_id,))

    def get(self, doc_id: str, source: str | None) -> tuple[Features | None, str | None]:
        """(the image's features, None), made from `source` on first need; (None, why) when there are
        none and its source cannot be read."""
        with self._lock:
            row = self.db.execute("SELECT data FROM features WHERE id = ?", (doc_id,)).fetchone()
        if row is not None:
            return Features.from_bytes(row[0]), None
        if not source or source.startswith("upload:"):
            return None, "no features stored and no source to make them from"
        try:
            features = extract(sources.read(sources.Item(source=source), self.max_bytes))
        except LookalikeError as exc:
            return None, f"its source cannot be read: {exc.reason}"
        self.put(doc_id, features)
        return features, None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
