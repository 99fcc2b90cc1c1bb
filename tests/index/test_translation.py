"""The one translator of OpenSearch's failures (fast: no node; the real node is in tests/api/test_index_down.py)."""

from __future__ import annotations

import inspect

from opensearchpy.exceptions import ConnectionError, ConnectionTimeout, NotFoundError, TransportError

from lookalike.errors import IndexUnavailable
from lookalike.index.opensearch_client import shown_url, unavailable
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import Settings

SETTINGS = Settings(opensearch_url="http://127.0.0.1:9", alias="shop")


def test_failures_that_mean_the_cluster_cannot_answer_become_503s_naming_the_index():
    cases = {
        "unreachable": ConnectionError("N/A", "Connection refused", OSError()),
        "timed out": ConnectionTimeout("TIMEOUT", "Read timed out", OSError()),
        "answered 503": TransportError(503, "unavailable_shards_exception", {}),
        "answered 429": TransportError(429, "rejected_execution_exception", {}),
        "has no index shop": NotFoundError(404, "index_not_found_exception", {}),
    }
    for words, exc in cases.items():
        translated = unavailable(exc, SETTINGS)
        assert isinstance(translated, IndexUnavailable) and translated.status == 503, words
        assert words in translated.reason and "index shop" in translated.reason, translated.reason


def test_other_failures_are_left_as_they_are():
    assert unavailable(TransportError(400, "mapper_parsing_exception", {}), SETTINGS) is None
    assert unavailable(NotFoundError(404, "document_missing_exception", {}), SETTINGS) is None
    assert unavailable(ValueError("ours"), SETTINGS) is None


def test_every_public_method_goes_through_the_translator():
    public = [name for name, member in vars(OpenSearchIndex).items()
              if inspect.isfunction(member) and (not name.startswith("_") or name == "__init__")]  # fmt: skip
    assert {"search", "upsert", "get", "scan", "categories", "existing", "ping", "__init__"} <= set(public)
    assert all(hasattr(getattr(OpenSearchIndex, name), "__wrapped__") for name in public)


def test_a_password_written_into_the_url_is_masked_in_errors():
    assert shown_url("https://admin:s3cret@a:9200,https://b:9200") == "https://admin:***@a:9200,https://b:9200"
    assert shown_url("http://127.0.0.1:9200") == "http://127.0.0.1:9200" and shown_url(None) == ""
