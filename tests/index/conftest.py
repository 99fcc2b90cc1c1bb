"""Search-side fixtures: each backend behind the same interface, fresh per test.

`opensearch` runs against the strict test double (tests/opensearch/double.py) unless
OPENSEARCH_URL names a real cluster (`make test-opensearch`); then the same tests run there.
"""

from __future__ import annotations

import os
import uuid

import pytest

from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import Settings
from tests.index.double import OpenSearchDouble

BACKENDS = ["embedded", pytest.param("opensearch", marks=pytest.mark.opensearch)]


@pytest.fixture(scope="session")
def opensearch_url():
    url = os.environ.get("OPENSEARCH_URL")
    if url:
        yield url
        return
    with OpenSearchDouble() as double:
        yield double.url


@pytest.fixture
def make_index(request, tmp_path, opensearch_url):
    """make_index(model, dimension, **settings) -> an index of the backend this test is parametrized with."""
    backend = request.param
    alias = f"t-{uuid.uuid4().hex[:10]}"
    opened = []

    def make(model: str = "m", dimension: int = 8, **overrides):
        if backend == "embedded":
            settings = Settings(data_dir=tmp_path, alias=alias, **overrides)
            index = EmbeddedIndex(tmp_path, alias, model, dimension, settings.m, settings.ef_construction)
        else:
            settings = Settings(
                opensearch_url=opensearch_url,
                alias=alias,
                opensearch_user=os.environ.get("OPENSEARCH_USER"),
                opensearch_password=os.environ.get("OPENSEARCH_PASSWORD"),
                opensearch_verify=os.environ.get("OPENSEARCH_VERIFY", "true") == "true",
                **overrides,
            )
            index = OpenSearchIndex(settings, model, dimension)
        opened.append(index)
        return index

    make.backend = backend
    make.alias = alias
    yield make
    if backend == "opensearch" and os.environ.get("OPENSEARCH_URL") and opened:
        client = opened[0].client
        for name in client.indices.get(index=f"{alias}-*"):
            client.indices.delete(index=name)
