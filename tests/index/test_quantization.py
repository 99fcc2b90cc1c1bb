"""Quantised graphs: less memory, the same answers. The embedded graph's candidates are re-ranked
exactly, so scores never depend on the quantisation; OpenSearch's Lucene engine quantises on the node."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from lookalike.errors import SettingsError
from lookalike.index import graph
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex, vector_field
from tests.backends import drop_indices, opensearch_settings


def clustered(seed: int, n: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    x = centres[rng.integers(0, 20, n)] + 0.4 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fill(index, xb: np.ndarray, start: int = 0) -> None:
    docs = [Doc(id=f"d{start + i}", vector=v, model="m", category=f"c{(start + i) % 5}") for i, v in enumerate(xb)]
    assert index.upsert(docs) == (len(docs), [])


@pytest.fixture
def small_training(monkeypatch):
    """sq8 learns its ranges from TRAIN_SIZE vectors; 300 keeps these tests quick."""
    monkeypatch.setattr(graph, "TRAIN_SIZE", 300)


@pytest.mark.parametrize("quantization", ["fp16", "sq8", "rabitq"])
def test_quantised_graph_scores_are_exact_cosines(tmp_path, small_training, quantization):
    xb = clustered(0, 1000, 48)
    index = EmbeddedIndex(tmp_path, "a", "m", 48, quantization=quantization)
    fill(index, xb)
    rng = np.random.default_rng(1)
    xq = xb[rng.integers(0, 1000, 20)] + 0.1 * rng.standard_normal((20, 48)).astype(np.float32)
    index.search(xq[0], k=1)
    assert index.graph_kind == quantization
    for query in xq:
        query = query / np.linalg.norm(query)
        hits = index.search(query, k=10)
        assert [hit.similarity for hit in hits] == sorted((hit.similarity for hit in hits), reverse=True)
        for hit in hits:  # the float32 cosine, not the graph's approximation
            assert hit.similarity == pytest.approx(float(xb[int(hit.id[1:])] @ query), abs=1e-6)
        assert hits[0].similarity == pytest.approx(float(np.max(xb @ query)), abs=1e-6)
        filtered = index.search(query, k=3, category="c2")
        assert {hit.metadata["category"] for hit in filtered} == {"c2"}
        assert filtered[0].similarity == pytest.approx(float(np.max(xb[2::5] @ query)), abs=1e-6)


def test_sq8_graph_stays_float32_until_it_has_enough_vectors_to_learn_from(tmp_path, small_training):
    xb = clustered(2, 400, 32)
    index = EmbeddedIndex(tmp_path, "a", "m", 32, quantization="sq8")
    fill(index, xb[:100])
    assert index.search(xb[5], k=1)[0].id == "d5"
    assert index.graph_kind == "none"
    fill(index, xb[100:], start=100)
    assert index.search(xb[350], k=1)[0].id == "d350"
    assert index.graph_kind == "sq8" and index.graph.index.ntotal == 400  # rebuilt once, from SQLite


def test_reopening_loads_the_saved_graph_and_another_quantization_rebuilds_it(tmp_path, small_training, caplog):
    xb = clustered(3, 500, 32)
    index = EmbeddedIndex(tmp_path, "a", "m", 32, quantization="sq8")
    fill(index, xb)
    index.delete("d9")
    index.close()
    with caplog.at_level(logging.WARNING, logger="lookalike.index.embedded"):
        again = EmbeddedIndex(tmp_path, "a", "m", 32, quantization="sq8")
    assert not caplog.records and again.graph_kind == "sq8"
    assert again.search(xb[40], k=1)[0].id == "d40"
    assert "d9" not in [hit.id for hit in again.search(xb[9], k=5)]
    again.close()
    with caplog.at_level(logging.WARNING, logger="lookalike.index.embedded"):
        flat = EmbeddedIndex(tmp_path, "a", "m", 32, quantization="none")
    assert "rebuilding the graph" in caplog.text and flat.graph_kind == "none"
    assert flat.graph.index.ntotal == 499  # rebuilt from the live rows only
    assert flat.search(xb[40], k=1)[0].id == "d40"


def test_rabitq_ranks_the_graphs_proposals_by_its_8bit_copy(tmp_path, small_training):
    """The 1-bit graph proposes RABITQ_WIDEN x the candidates and the sq8 copy beside it keeps the
    best, so the exact re-ranking sees the true neighbours: recall@10 against brute force, and far
    above what the 1-bit distances alone would keep."""
    d = 256  # RaBitQ's distance estimates sharpen with the dimension; embeddings have hundreds
    xb = clustered(4, 3000, d)
    index = EmbeddedIndex(tmp_path, "a", "m", d, m=32, ef_construction=40, quantization="rabitq")
    fill(index, xb)
    rng = np.random.default_rng(5)
    xq = xb[rng.integers(0, 3000, 30)] + 0.3 * rng.standard_normal((30, d)).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    truths = [{f"d{i}" for i in np.argsort(-(xb @ query))[:10]} for query in xq]

    def recall() -> float:
        hits = [{hit.id for hit in index.search(query, k=10)} for query in xq]
        return sum(len(truth & found) for truth, found in zip(truths, hits, strict=True)) / (10 * len(xq))

    with_codes = recall()
    assert index.graph_kind == "rabitq" and index.graph.codes.ntotal == index.graph.index.ntotal == 3000
    index.graph.codes = None  # the 1-bit distances alone choose what the exact re-ranking sees
    assert with_codes >= 0.9 and with_codes >= recall() + 0.2


def test_a_rabitq_graph_newer_than_its_codes_is_rebuilt_and_loses_nothing(tmp_path, small_training, caplog):
    """A save cut short after codes.faiss, before graph.faiss, is impossible by the order of the
    writes; the other way round (a copied folder, a disk that lost the last file) is caught on open."""
    xb = clustered(6, 600, 32)
    index = EmbeddedIndex(tmp_path, "a", "m", 32, quantization="rabitq")
    fill(index, xb[:400])
    index.flush()
    older = (index.graph.path / "codes.faiss").read_bytes()
    fill(index, xb[400:], start=400)
    index.close()
    (tmp_path / index.name / "codes.faiss").write_bytes(older)
    with caplog.at_level(logging.WARNING):
        again = EmbeddedIndex(tmp_path, "a", "m", 32, quantization="rabitq")
    assert "rebuilding the graph" in caplog.text and "codes.faiss holds 400 vectors" in caplog.text
    assert again.graph_kind == "rabitq" and again.graph.codes.ntotal == again.graph.index.ntotal == 600
    assert again.search(xb[550], k=1)[0].id == "d550"


def test_an_unknown_quantization_is_refused(tmp_path):
    with pytest.raises(ValueError, match="quantization must be one of"):
        EmbeddedIndex(tmp_path, "a", "m", 8, quantization="pq")


@pytest.mark.opensearch
def test_lucene_sq_on_the_real_node_finds_the_same_nearest(opensearch_url):
    """The Lucene engine's 7-bit scalar quantisation (k-NN 2.16+), mapped and searched on the node. Its
    scores come from the 7-bit codes, not re-ranked: an identical vector scored 0.979 here, not 1."""
    alias = "t-quantised"
    settings = opensearch_settings(opensearch_url, alias, quantization="sq8")
    try:
        index = OpenSearchIndex(settings, "m", 48)
        encoder = vector_field(index.client, index.name)["method"]["parameters"]["encoder"]
        assert encoder["name"] == "sq"
        xb = clustered(4, 600, 48)
        fill(index, xb)
        index.refresh()
        for i in (3, 150, 599):
            hits = index.search(xb[i], k=5)
            assert hits[0].id == f"d{i}"
            assert hits[0].similarity == pytest.approx(1.0, abs=0.05)
    finally:
        drop_indices(opensearch_url, alias)


@pytest.mark.opensearch
def test_a_quantization_the_engine_lacks_is_refused_before_any_index_is_made(opensearch_url):
    alias = "t-no-fp16"
    settings = opensearch_settings(opensearch_url, alias, quantization="fp16", engine="lucene")
    try:
        with pytest.raises(SettingsError, match="not offered by the lucene engine"):
            OpenSearchIndex(settings, "m", 8)
        index = OpenSearchIndex(opensearch_settings(opensearch_url, alias), "m", 8)
        assert set(index.client.indices.get(index=f"{alias}-*")) == {index.name}  # the refusal made none
    finally:
        drop_indices(opensearch_url, alias)
