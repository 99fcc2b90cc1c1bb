"""Search-side fixtures: each backend behind the same interface, fresh per test.

`opensearch` is the real node the session starts (tests/conftest.py), or OPENSEARCH_URL's.
"""

from __future__ import annotations

import uuid

import pytest

from lookalike.index.embedded import EF_CONSTRUCTION, EmbeddedIndex, M
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import Settings
from tests.backends import drop_indices, node_url, opensearch_settings


@pytest.fixture
def make_index(request, tmp_path):
    """make_index(model, dimension, **settings) -> an index of the backend this test is parametrized with."""
    backend = request.param
    alias = f"t-{uuid.uuid4().hex[:10]}"
    url = node_url(request, backend)

    def make(model: str = "m", dimension: int = 8, **overrides):
        if backend == "embedded":
            settings = Settings(data_dir=tmp_path, alias=alias, **overrides)
            return EmbeddedIndex(tmp_path, alias, model, dimension, settings.m or M,
                                 settings.ef_construction or EF_CONSTRUCTION,
                                 quantization=settings.quantization or "sq8")  # fmt: skip
        return OpenSearchIndex(opensearch_settings(url, alias, **overrides), model, dimension)

    make.backend = backend
    make.alias = alias
    make.url = url
    yield make
    if url:
        drop_indices(url, alias)
