"""The index backends the tests run against, and how to reach and clean the real OpenSearch node."""

from __future__ import annotations

import os

import pytest

from lookalike.index.opensearch_index import connect
from lookalike.settings import Settings

BACKENDS = ["embedded", pytest.param("opensearch", marks=pytest.mark.opensearch)]


def opensearch_settings(url: str, alias: str, **more) -> Settings:
    return Settings(opensearch_url=url, alias=alias, opensearch_user=os.environ.get("OPENSEARCH_USER"),
                    opensearch_password=os.environ.get("OPENSEARCH_PASSWORD"),
                    opensearch_verify=os.environ.get("OPENSEARCH_VERIFY", "true") == "true", **more)  # fmt: skip


def drop_indices(url: str, alias: str) -> None:
    """Delete every physical index made behind `alias` (`<alias>-...`), on any node we test against."""
    client = connect(opensearch_settings(url, alias))
    for name in client.indices.get(index=f"{alias}-*", expand_wildcards="all"):
        client.indices.delete(index=name)
