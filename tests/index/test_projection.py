"""The reduced graph: a large embedded graph walks in the catalogue's own principal directions and
the index re-ranks on the full vectors. Sizes are patched small (PROJECT_SIZE, FIT_SAMPLE,
TRAIN_SIZE) so these run in the fast tier; the million-vector figures are `lookalike bench index`'s."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from lookalike.bench import drift
from lookalike.index import graph, projection
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.projection import Projection
from lookalike.index.recall import estimate

D = 96


def low_rank(seed: int, n: int, rank: int = 12, d: int = D) -> np.ndarray:
    """Unit vectors with most of their variance in `rank` directions of their own (seed-given)."""
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.standard_normal((d, rank)))[0].T
    x = rng.standard_normal((n, rank)) * np.linspace(3, 1, rank) @ directions + 0.05 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fill(index: EmbeddedIndex, xb: np.ndarray, start: int = 0) -> None:
    docs = [Doc(id=f"d{start + i}", vector=v, model="m", category=f"c{(start + i) % 4}") for i, v in enumerate(xb)]
    assert index.upsert(docs) == (len(docs), [])


@pytest.fixture
def small_sizes(monkeypatch):
    monkeypatch.setattr(graph, "TRAIN_SIZE", 300)
    monkeypatch.setattr(graph, "PROJECT_SIZE", 1000)
    monkeypatch.setattr(graph, "FIT_SAMPLE", 800)
    monkeypatch.setattr(projection, "DRIFT_MIN", 200)


def test_a_fit_keeps_the_variance_of_the_sample_and_euclidean_distance_in_its_span():
    sample = low_rank(0, 2000)
    fitted = Projection.fit(sample, 16, population=2000)
    assert fitted.basis.shape == (D, 16) and fitted.kept > 0.95
    assert np.allclose(fitted.basis.T @ fitted.basis, np.eye(16), atol=1e-5)
    a, b = fitted.apply(sample[:50]), fitted.apply(sample[50:100])
    exact = np.linalg.norm(sample[:50] - sample[50:100], axis=1)
    assert np.allclose(np.linalg.norm(a - b, axis=1), exact, atol=0.1 * exact.max())
    too_few = Projection.fit(sample, 4, population=2000)
    assert too_few.kept < fitted.kept - 0.2


def test_a_fit_takes_more_directions_in_steps_until_they_keep_enough_of_the_variance(monkeypatch):
    monkeypatch.setattr(projection, "STEP", 4)
    sample = low_rank(0, 2000)  # 12 strong directions, then noise
    kept = {d: Projection.fit(sample, d, population=2000).kept for d in (4, 8, 12, 16)}
    assert kept[4] < kept[8] < kept[12] < kept[16]
    exactly = Projection.fit(sample, 4, population=2000)
    assert exactly.dimension == 4 and exactly.asked == 4 and exactly.kept == pytest.approx(kept[4])
    target = (kept[8] + kept[12]) / 2  # 8 keep too little, 12 enough
    grown = Projection.fit(sample, 8, population=2000, keep=target)
    assert grown.dimension == 12 and grown.asked == 8 and grown.kept == pytest.approx(kept[12])
    assert grown.describe()["dimension"] == 12 and grown.describe()["asked"] == 8
    capped = Projection.fit(sample, 4, population=2000, keep=0.9999)  # at most twice the directions asked
    assert capped.dimension == 8 and capped.kept < 0.9999
    enough = Projection.fit(sample, 16, population=2000, keep=target)  # the fewest asked keep enough already
    assert enough.dimension == 16


def test_vectors_from_elsewhere_are_seen_as_drift_only_when_there_are_enough(monkeypatch):
    monkeypatch.setattr(projection, "DRIFT_MIN", 100)
    fitted = Projection.fit(low_rank(0, 2000), 16, population=1000)
    same, other = low_rank(0, 300)[:150], low_rank(9, 300)
    fitted.observe(same, fitted.apply(same))
    assert not fitted.drifted() and fitted.seen_share == pytest.approx(fitted.kept, abs=0.05)
    fitted.observe(other[:40], fitted.apply(other[:40]))
    assert fitted.seen < 0.2 * 1000 and not fitted.drifted()  # too few seen to judge: 190 of 1,000
    fitted.observe(other[40:], fitted.apply(other[40:]))
    assert fitted.drifted() and fitted.seen_share < fitted.kept - projection.DRIFT


def test_a_large_graph_walks_projected_and_still_finds_the_exact_neighbours(tmp_path, small_sizes):
    xb = low_rank(1, 1500)
    index = EmbeddedIndex(tmp_path, "a", "m", D, projection=16)
    fill(index, xb[:900])
    index.search(xb[0], k=1)
    assert index.graph.projection is None  # under PROJECT_SIZE: the full vectors
    fill(index, xb[900:], start=900)
    rng = np.random.default_rng(2)
    xq = xb[rng.integers(0, 1500, 40)] + 0.05 * rng.standard_normal((40, D)).astype(np.float32)
    xq /= np.linalg.norm(xq, axis=1, keepdims=True)
    found = [index.search(query, k=10) for query in xq]
    walk = index.graph.describe()
    assert walk["quantization"] == "sq8" and walk["projection"]["dimension"] == 16
    assert index.graph.index.d == 16 and index.graph.index.ntotal == 1500
    recalls = []
    for query, hits in zip(xq, found, strict=True):
        truth = np.argsort(-(xb @ query))[:10]
        recalls.append(len({int(hit.id[1:]) for hit in hits} & set(truth.tolist())) / 10)
        for hit in hits:  # scores are the float32 cosines, whatever the walk
            assert hit.similarity == pytest.approx(float(xb[int(hit.id[1:])] @ query), abs=1e-6)
    assert np.mean(recalls) >= 0.9
    filtered = index.search(xq[0], k=5, category="c1")
    assert {hit.metadata["category"] for hit in filtered} == {"c1"}
    assert index.describe()["projection"]["dimension"] == 16


def test_the_projection_is_saved_with_the_graph_and_a_torn_save_rebuilds(tmp_path, small_sizes, caplog):
    xb = low_rank(3, 1200)
    index = EmbeddedIndex(tmp_path, "a", "m", D, projection=16)
    fill(index, xb)
    index.delete("d7")
    index.close()
    fit_id = json.loads((index.path / "graph.json").read_text())["projection"]["fit_id"]
    with caplog.at_level(logging.WARNING, logger="lookalike.index.graph"):
        again = EmbeddedIndex(tmp_path, "a", "m", D, projection=16)
    assert not caplog.records and again.graph.projection is not None and again.graph.projection.fit_id == fit_id
    assert again.search(xb[40], k=1)[0].id == "d40"
    assert "d7" not in [hit.id for hit in again.search(xb[7], k=5)]
    again.close()
    # A crash between writing a new fit and the graph.json naming it: the pair disagrees, so rebuild.
    state = json.loads((index.path / "graph.json").read_text())
    state["projection"]["fit_id"] = "another"
    (index.path / "graph.json").write_text(json.dumps(state))
    with caplog.at_level(logging.WARNING, logger="lookalike.index.graph"):
        rebuilt = EmbeddedIndex(tmp_path, "a", "m", D, projection=16)
    assert any("rebuilding" in record.getMessage() for record in caplog.records)
    assert rebuilt.search(xb[40], k=1)[0].id == "d40" and rebuilt.graph.index.ntotal == 1199
    rebuilt.close()
    with caplog.at_level(logging.WARNING, logger="lookalike.index.graph"):
        wider = EmbeddedIndex(tmp_path, "a", "m", D, projection=20)  # more directions asked for: a new fit
    assert any("fitted for 16 directions, not 20" in record.getMessage() for record in caplog.records)
    assert wider.graph.projection is not None and wider.graph.projection.asked == 20
    assert wider.search(xb[40], k=1)[0].id == "d40"
    wider.close()
    full = EmbeddedIndex(tmp_path, "a", "m", D, projection=0)  # projection turned off: the full graph again
    assert full.search(xb[40], k=1)[0].id == "d40"
    assert full.graph.projection is None and full.graph.index.d == D
    full.close()


def test_a_saved_fit_that_keeps_too_little_is_refitted_with_more_directions(tmp_path, small_sizes, monkeypatch,
                                                                              caplog):  # fmt: skip
    xb = low_rank(6, 1200)  # 12 strong directions: 4 keep well under 0.95, 8 more
    monkeypatch.setattr(graph, "KEEP", 0.0)  # a fit made before directions were chosen by the variance kept
    index = EmbeddedIndex(tmp_path, "a", "m", D, projection=4)
    fill(index, xb)
    index.close()
    assert index.graph.projection is not None and index.graph.projection.dimension == 4
    monkeypatch.setattr(graph, "KEEP", 0.95)
    monkeypatch.setattr(projection, "STEP", 4)
    with caplog.at_level(logging.WARNING, logger="lookalike.index.graph"):
        again = EmbeddedIndex(tmp_path, "a", "m", D, projection=4)
    assert any("its 4 directions keep" in record.getMessage() for record in caplog.records)
    assert again.graph.projection is not None and again.graph.projection.dimension == 8  # twice 4: the most
    assert again.search(xb[40], k=1)[0].id == "d40"
    again.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lookalike.index.graph"):
        kept = EmbeddedIndex(tmp_path, "a", "m", D, projection=4)  # at the most already: no rebuild loop
    assert not caplog.records and kept.graph.projection.dimension == 8
    kept.close()


def test_a_catalogue_that_drifts_out_of_the_fit_is_refitted_and_found(tmp_path, small_sizes):
    first, later = low_rank(4, 1200), low_rank(5, 700)  # later photos lie in other directions
    index = EmbeddedIndex(tmp_path, "a", "m", D, projection=16)
    fill(index, first)
    index.search(first[0], k=1)
    kept_before = index.graph.projection.kept
    fill(index, later, start=1200)
    index.search(first[0], k=1)  # adds them, and measures how much of them the fit keeps
    assert index.graph.projection.drifted()
    index.search(first[0], k=1)  # refits and rebuilds
    refitted = index.graph.projection
    assert refitted.population == 1900 and refitted.seen == 0 and index.graph.index.ntotal == 1900
    assert refitted.kept < kept_before  # two subspaces in 16 directions: a compromise, but one that covers both
    xq = later[:30]
    recalls = [len({hit.id for hit in index.search(q, k=10)}
                   & {f"d{1200 + i}" for i in np.argsort(-(later @ q))[:10]}) / 10 for q in xq]  # fmt: skip
    assert np.mean(recalls) >= 0.9


def test_admin_recall_estimates_the_projected_graph_against_exact_search(tmp_path, small_sizes):
    xb = low_rank(6, 1500)
    index = EmbeddedIndex(tmp_path, "a", "m", D, projection=16)
    fill(index, xb)
    index.search(xb[0], k=1)
    assert index.graph.projection is not None
    measured = estimate(index, k=10, sample=60, ef_values=(10, 128))
    low, high = measured.rows
    assert 0 <= low["recall"] <= high["recall"] <= 1 and high["recall"] >= 0.9


@pytest.mark.slow
def test_bench_drift_shows_the_stale_fit_and_the_refit_on_the_same_vectors(small_sizes):
    """`lookalike bench drift` in miniature (1,100 + 1,100 vectors at 160-d): with the refit off the
    added set keeps little of its variance in the fit; at the defaults the graph is refitted."""
    stale, refitted = (drift.run(1100, 160, queries=30, refit=refit, ef_search=64) for refit in (False, True))
    assert not stale["refitted"] and stale["added_kept"] < stale["fit_kept"] - projection.DRIFT
    assert refitted["refitted"] and refitted["kept_after"] > refitted["added_kept"]
    assert refitted["recall_b"] >= max(0.9, stale["recall_b"]) and refitted["recall_a"] >= 0.9
