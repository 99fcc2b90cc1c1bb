"""The index backends the tests run against, and how to reach and clean the real OpenSearch node."""

from __future__ import annotations

import os

import pytest

from lookalike.index.opensearch_client import connect
from lookalike.settings import Settings

# The real OpenSearch nodes, by backend name -> the session fixture that starts one (conftest.py):
# plain 2.19, secured 2.19 (TLS, users, roles; the tests run there as the least-privilege user),
# and plain 3.5 (Java 21+).
NODE_FIXTURES = {"opensearch": "plain_opensearch_url", "opensearch-secured": "secured_opensearch_url",
                 "opensearch-3.5": "v35_opensearch_url"}  # fmt: skip
BACKENDS = ["embedded", *(pytest.param(name, marks=pytest.mark.opensearch) for name in NODE_FIXTURES)]


def is_opensearch(backend: str) -> bool:
    return backend in NODE_FIXTURES


def node_url(request, backend: str) -> str | None:
    """The URL of the real node `backend` names (started on first use), None for the embedded index."""
    return request.getfixturevalue(NODE_FIXTURES[backend]) if backend in NODE_FIXTURES else None


# The client settings of the secured test node, in the environment while it runs (conftest.py).
CLIENT_VARIABLES = ("LOOKALIKE_OPENSEARCH_USER", "LOOKALIKE_OPENSEARCH_PASSWORD", "LOOKALIKE_OPENSEARCH_CA_FILE",
                    "LOOKALIKE_OPENSEARCH_URL")  # fmt: skip


def opensearch_settings(url: str, alias: str, **more) -> Settings:
    """Settings that reach the node at `url`: the credentials in the environment (the secured test
    node's, or OPENSEARCH_USER/PASSWORD for a node given by OPENSEARCH_URL)."""
    env = os.environ
    reach = {"opensearch_user": env.get("LOOKALIKE_OPENSEARCH_USER") or env.get("OPENSEARCH_USER"),
             "opensearch_password": env.get("LOOKALIKE_OPENSEARCH_PASSWORD") or env.get("OPENSEARCH_PASSWORD"),
             "opensearch_ca_file": env.get("LOOKALIKE_OPENSEARCH_CA_FILE"),
             "opensearch_verify": env.get("OPENSEARCH_VERIFY", "true") == "true"}  # fmt: skip
    return Settings(opensearch_url=url, alias=alias, **(reach | more))


def drop_indices(url: str, alias: str) -> None:
    """Delete every physical index made behind `alias` (`<alias>-...`), on any node we test against."""
    client = connect(opensearch_settings(url, alias))
    for name in client.indices.get(index=f"{alias}-*", expand_wildcards="all"):
        client.indices.delete(index=name)
