"""Index backends behind one interface; `open_index` picks OpenSearch when `opensearch_url` is set,
else the embedded SQLite + FAISS index."""

from __future__ import annotations

from typing import Protocol

# the backends import lookalike.index.documents only, so importing them here makes no circle
from lookalike.index import embedded
from lookalike.index.documents import Doc, Hit
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import Settings


class VectorIndex(Protocol):
    model: str
    dimension: int

    def upsert(self, docs: list[Doc]) -> tuple[int, list[tuple[str, str]]]: ...
    def existing(self, ids) -> set[str]: ...
    def get(self, doc_id: str) -> Doc | None: ...
    def delete(self, doc_id: str) -> bool: ...
    def search(self, vector, k=10, *, category=None, tags=(), exclude_ids=(), min_similarity=None,
               by_regions=True, ef_search=None) -> list[Hit]:  # fmt: skip
        """The k nearest images; an image scores by its best vector (its region vectors too unless
        `by_regions` is False: whole image against whole image, what dedup uses); `ef_search` for
        this request only (lookalike admin recall)."""

    def categories(self) -> dict[str, int]:
        """Category name -> number of images, by name."""

    def count(self) -> int: ...
    def scan(self): ...
    def ping(self) -> None: ...
    def refresh(self) -> None:
        """Make every acknowledged write searchable now (OpenSearch refreshes about once a second by
        itself; the embedded index's searches always see its writes)."""

    def flush(self) -> None:
        """Persist: the embedded index saves its graph; OpenSearch refreshes."""

    def close(self) -> None: ...
    def describe(self) -> dict: ...


def open_index(settings: Settings, model: str, dimension: int) -> VectorIndex:
    if settings.opensearch_url:
        return OpenSearchIndex(settings, model, dimension)
    return EmbeddedIndex(settings.data_dir, settings.alias, model, dimension, settings.m or embedded.M,
                         settings.ef_construction or embedded.EF_CONSTRUCTION,
                         settings.ef_search, quantization=settings.quantization or "sq8",
                         regions=settings.regions, rerank=settings.rerank,
                         projection=settings.projection)  # fmt: skip
