"""Faults a live node cannot produce on demand, injected by a proxy in front of the real node."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.index.documents import Doc
from lookalike.index.opensearch_index import OpenSearchIndex
from tests.backends import opensearch_settings
from tests.faults import FaultProxy

pytestmark = pytest.mark.opensearch


def docs(count: int, dimension: int = 8) -> list[Doc]:
    vectors = np.random.default_rng(7).normal(size=(count, dimension)).astype(np.float32)
    return [Doc(id=f"d{i:03d}", vector=v / np.linalg.norm(v), model="m") for i, v in enumerate(vectors)]


def test_bulk_rejections_and_server_errors_are_retried_without_loss(opensearch_url, os_alias):
    direct = OpenSearchIndex(opensearch_settings(opensearch_url, os_alias), "m", 8)
    with FaultProxy(opensearch_url) as proxy:
        index = OpenSearchIndex(opensearch_settings(proxy.url, os_alias), "m", 8)
        proxy.fail("/_bulk", 429, 503, 502)
        written, failures = index.upsert(docs(50), retries=4)
        assert [status for _, status in proxy.injected] == [429, 503, 502]  # every fault was met
    assert written == 50 and failures == []
    direct.flush()
    assert direct.count() == 50 and direct.existing([doc.id for doc in docs(50)]) == {doc.id for doc in docs(50)}


def test_a_node_that_keeps_failing_is_reported_per_document_not_raised(opensearch_url, os_alias):
    with FaultProxy(opensearch_url) as proxy:
        index = OpenSearchIndex(opensearch_settings(proxy.url, os_alias), "m", 8)
        proxy.fail("/_bulk", *[503] * 100)  # more than the client and upsert retry together
        written, failures = index.upsert(docs(5), retries=2)
    assert written == 0 and sorted(doc_id for doc_id, _ in failures) == [f"d{i:03d}" for i in range(5)]
    assert all("503" in reason for _, reason in failures)
