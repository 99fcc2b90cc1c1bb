"""Local features on OpenSearch: the companion index `<alias>-features`, shared by every API replica
and by `lookalike dedup` on any host, so none needs local files or fetches a source twice.

One document per image id; its features (Features.to_bytes, base64) in `data`, a `binary` field:
never indexed or searched, kept once, in `_source` (kept out of it as a stored field, they cost
nearly twice the disk: the cluster also keeps the original JSON for peer recovery; sizes:
docs/relevance.md). Per alias, not per physical index: features depend on the pixels, not the
model, so they outlive a model swap.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from opensearchpy import OpenSearch, helpers

from lookalike.index.opensearch_client import connect, every_call_translated
from lookalike.settings import Settings
from lookalike.verify.store import FeatureStore

MAPPING = {"mappings": {"dynamic": "strict", "properties": {"data": {"type": "binary"}}}}


@every_call_translated
class OpenSearchFeatures(FeatureStore):
    def __init__(self, settings: Settings, client: OpenSearch | None = None) -> None:
        super().__init__(settings.max_image_bytes, settings.feature_cache)
        self.settings = settings
        self.name = f"{settings.alias}-features"
        self.client = client or connect(settings)
        self._made = False

    def _ensure(self) -> None:
        if self._made:
            return
        if not self.client.indices.exists(index=self.name):
            body = {"settings": {"number_of_shards": self.settings.shards,
                                 "number_of_replicas": self.settings.replicas}, **MAPPING}  # fmt: skip
            self.client.indices.create(index=self.name, body=body, ignore=400)  # made meanwhile by another writer
        self._made = True

    def read(self, doc_id: str) -> bytes | None:
        found = self.client.get(index=self.name, id=doc_id, ignore=404)
        data = found.get("_source", {}).get("data") if found.get("found") else None
        return base64.b64decode(data) if data else None

    def write(self, doc_id: str, data: bytes) -> None:
        self._ensure()
        self.client.index(index=self.name, id=doc_id, body={"data": base64.b64encode(data).decode()})

    def write_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        """Many at once (ingest), in one bulk request; a failure raises."""
        self._ensure()
        actions = [{"_index": self.name, "_id": doc_id, "_source": {"data": base64.b64encode(data).decode()}}
                   for doc_id, data in items]  # fmt: skip
        if actions:
            helpers.bulk(self.client, actions)

    def delete(self, doc_id: str) -> None:
        self.client.delete(index=self.name, id=doc_id, ignore=404)

    def close(self) -> None:
        super().close()
        self.client.close()
