"""The reduced walk on the real node, as `lookalike bench opensearch-reduced` measures it: a
principal-direction `walk` field beside the full vector, its candidates re-scored by the k-NN
scoring script's exact cosine on the full field. Not adopted by the backend (the benchmark
decides that); this checks that the queries it times do what they claim."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from lookalike.bench import opensearch_reduced
from lookalike.index.opensearch_client import connect
from lookalike.index.projection import Projection
from tests.backends import opensearch_settings

pytestmark = pytest.mark.opensearch
D, WALK = 64, 12


def low_rank(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.standard_normal((D, 10)))[0].T
    x = rng.standard_normal((n, 10)) * np.linspace(3, 1, 10) @ directions + 0.05 * rng.standard_normal((n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_walk_and_rescore_return_the_exact_cosine_order_of_what_the_walk_found(opensearch_url):
    alias = f"t-{uuid.uuid4().hex[:10]}"
    name = f"{alias}-reduced"
    client = connect(opensearch_settings(opensearch_url, alias))
    xb = low_rank(0, 1500)
    projection = Projection.fit(xb, WALK, population=len(xb))
    client.indices.create(index=name, body=opensearch_reduced.mapping(D, WALK))
    try:
        opensearch_reduced.load(client, name, [xb], projection)
        fields = client.indices.get_mapping(index=name)[name]["mappings"]["properties"]
        assert fields["walk"]["dimension"] == WALK and fields["walk"]["method"]["engine"] == "lucene"
        rng = np.random.default_rng(1)
        xq = xb[rng.integers(0, len(xb), 15)] + 0.05 * rng.standard_normal((15, D)).astype(np.float32)
        xq /= np.linalg.norm(xq, axis=1, keepdims=True)
        recalls = []
        for query, walk in zip(xq, projection.apply(xq), strict=True):
            body = opensearch_reduced.reduced_query(query, walk, ef=100, depth=40)
            hits = client.search(index=name, body=body)["hits"]["hits"]
            ids = [int(hit["_id"]) for hit in hits]
            cosines = xb[ids] @ query
            assert len(ids) == 10 and list(np.argsort(-cosines)) == list(range(10))  # exact order, rescored
            # the k-NN scoring script's cosinesimil score is (1 + cos) / 2, as the k-NN query's
            assert [hit["_score"] for hit in hits] == pytest.approx(((1 + cosines) / 2).tolist(), abs=1e-4)
            recalls.append(len(set(ids) & set(np.argsort(-(xb @ query))[:10].tolist())) / 10)
            full = client.search(index=name, body=opensearch_reduced.full_query(query, 100))["hits"]["hits"]
            assert int(full[0]["_id"]) == int(np.argmax(xb @ query))
        assert np.mean(recalls) >= 0.9
    finally:
        client.indices.delete(index=name)
