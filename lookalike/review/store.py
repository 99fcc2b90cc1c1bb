"""Where de-duplication's last run and people's decisions are kept, on each index backend.

    embedded     LOOKALIKE_DATA_DIR/<alias>.review.sqlite
    OpenSearch   the index <alias>-review (a plain index: no vectors)

Both are per alias, not per physical index: decisions are about image ids, so they outlive a
re-index under a new model and an alias swap. The last run's groups are kept as the run made
them; decisions are applied when they are read (lookalike.review.decisions.apply_all), so a
decision counts at once, for every later run, and after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Protocol

from opensearchpy import OpenSearch, helpers

from lookalike.errors import IndexUnavailable
from lookalike.index.opensearch_client import connect, every_call_translated
from lookalike.review.decisions import Decision
from lookalike.settings import Settings


class ReviewStore(Protocol):
    def record(self, decisions: list[Decision]) -> None:
        """Keep `decisions` (each replaces an earlier one about the same ids)."""

    def decisions(self) -> list[Decision]: ...
    def save_run(self, run: dict, groups: list[dict], stacks: list[dict]) -> None:
        """Replace the last run: its summary, copy groups and same-scene stacks (as the run made them)."""

    def run(self) -> dict | None:
        """The last run's summary, or None before the first."""

    def groups(self) -> list[dict]: ...
    def stacks(self) -> list[dict]: ...
    def close(self) -> None: ...


def open_review(settings: Settings) -> ReviewStore:
    if settings.opensearch_url:
        return OpenSearchReview(settings)
    return SQLiteReview(Path(settings.data_dir) / f"{settings.alias}.review.sqlite")


SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS found (kind TEXT NOT NULL, position INTEGER NOT NULL, body TEXT NOT NULL,
                                  PRIMARY KEY (kind, position));
"""


class SQLiteReview:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise IndexUnavailable(f"cannot open the review store at {path}: {exc}") from exc

    def record(self, decisions: list[Decision]) -> None:
        with self._lock, self.db:
            self.db.executemany("INSERT OR REPLACE INTO decisions VALUES (?, ?)",
                                [(decision.key, json.dumps(decision.to_dict())) for decision in decisions])  # fmt: skip

    def decisions(self) -> list[Decision]:
        with self._lock:
            rows = self.db.execute("SELECT body FROM decisions").fetchall()
        return [Decision.from_dict(json.loads(body)) for (body,) in rows]

    def save_run(self, run: dict, groups: list[dict], stacks: list[dict]) -> None:
        with self._lock, self.db:  # one transaction: a reader sees the old run or the new one
            self.db.execute("DELETE FROM found")
            self.db.executemany("INSERT INTO found VALUES (?, ?, ?)",
                                [("group", n, json.dumps(group)) for n, group in enumerate(groups)]
                                + [("stack", n, json.dumps(stack)) for n, stack in enumerate(stacks)])  # fmt: skip
            self.db.execute("INSERT OR REPLACE INTO runs VALUES (1, ?)", (json.dumps(run),))

    def run(self) -> dict | None:
        with self._lock:
            row = self.db.execute("SELECT body FROM runs WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def _found(self, kind: str) -> list[dict]:
        with self._lock:
            rows = self.db.execute("SELECT body FROM found WHERE kind = ? ORDER BY position", (kind,)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def groups(self) -> list[dict]:
        return self._found("group")

    def stacks(self) -> list[dict]:
        return self._found("stack")

    def close(self) -> None:
        with self._lock:
            self.db.close()


MAPPING = {"mappings": {"dynamic": False, "properties": {
    "type": {"type": "keyword"}, "run": {"type": "keyword"}, "position": {"type": "integer"},
    "body": {"type": "object", "enabled": False}}}}  # fmt: skip


@every_call_translated
class OpenSearchReview:
    """Documents of `type` decision (id decision-<key>), run (id run) and group/stack (tagged with
    their run's id; the previous run's are deleted once the new run is in place)."""

    def __init__(self, settings: Settings, client: OpenSearch | None = None) -> None:
        self.settings = settings
        self.name = f"{settings.alias}-review"
        self.client = client or connect(settings)

    def _ensure(self) -> None:
        if not self.client.indices.exists(index=self.name):
            self.client.indices.create(index=self.name, body={"settings": {"number_of_shards": 1}, **MAPPING},
                                       ignore=400)  # fmt: skip  # made meanwhile by another writer

    def record(self, decisions: list[Decision]) -> None:
        self._ensure()
        actions = [{"_index": self.name, "_id": f"decision-{decision.key}",
                    "_source": {"type": "decision", "body": decision.to_dict()}} for decision in decisions]  # fmt: skip
        helpers.bulk(self.client, actions, refresh="wait_for")

    def _all(self, query: dict) -> list[dict]:
        if not self.client.indices.exists(index=self.name):
            return []
        hits = helpers.scan(self.client, index=self.name, query={"query": query, "sort": [{"position": "asc"}]},
                            preserve_order=True)  # fmt: skip
        return [hit["_source"]["body"] for hit in hits]

    def decisions(self) -> list[Decision]:
        return [Decision.from_dict(body) for body in self._all({"term": {"type": "decision"}})]

    def save_run(self, run: dict, groups: list[dict], stacks: list[dict]) -> None:
        self._ensure()
        run_id = uuid.uuid4().hex
        found = [(kind, n, body) for kind, bodies in (("group", groups), ("stack", stacks))
                 for n, body in enumerate(bodies)]  # fmt: skip
        actions = [{"_index": self.name, "_id": f"{kind}-{run_id}-{n}",
                    "_source": {"type": kind, "run": run_id, "position": n, "body": body}}
                   for kind, n, body in found]  # fmt: skip
        helpers.bulk(self.client, actions, refresh="wait_for")
        self.client.index(index=self.name, id="run", body={"type": "run", "run": run_id, "body": run},
                          refresh="wait_for")  # fmt: skip  # the switch: readers now see the new run's groups
        older = {"bool": {"filter": [{"terms": {"type": ["group", "stack"]}}], "must_not": [{"term": {"run": run_id}}]}}
        # Deleted by id (the integ-test distribution has no reindex module, so no _delete_by_query)
        stale = helpers.scan(self.client, index=self.name, query={"query": older, "_source": False})
        helpers.bulk(self.client, ({"_op_type": "delete", "_index": self.name, "_id": hit["_id"]} for hit in stale),
                     refresh="wait_for", raise_on_error=False)  # fmt: skip  # one deleted meanwhile is fine

    def _current(self) -> dict | None:
        if not self.client.indices.exists(index=self.name):
            return None
        found = self.client.get(index=self.name, id="run", ignore=404)
        return found["_source"] if found.get("found") else None

    def run(self) -> dict | None:
        current = self._current()
        return current["body"] if current else None

    def _found(self, kind: str) -> list[dict]:
        current = self._current()
        if current is None:
            return []
        return self._all({"bool": {"filter": [{"term": {"type": kind}}, {"term": {"run": current["run"]}}]}})

    def groups(self) -> list[dict]:
        return self._found("group")

    def stacks(self) -> list[dict]:
        return self._found("stack")

    def close(self) -> None:
        self.client.close()
