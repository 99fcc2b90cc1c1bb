"""The index contract, run unchanged against the embedded index and the real OpenSearch node."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import IndexMismatch
from lookalike.index.documents import Doc
from tests.backends import BACKENDS, is_opensearch

pytestmark = pytest.mark.parametrize("make_index", BACKENDS, indirect=True)


def unit(rng, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def docs_for(xb: np.ndarray, model: str = "m") -> list[Doc]:
    return [
        Doc(id=f"d{i:03d}", vector=v, model=model, source=f"/img/{i}.jpg", category=("even", "odd")[i % 2],
            tags=["all"] + (["three"] if i % 3 == 0 else []), width=640, height=480)
        for i, v in enumerate(xb)
    ]  # fmt: skip


@pytest.fixture
def filled(make_index):
    rng = np.random.default_rng(7)
    xb = unit(rng, 120, 8)
    index = make_index("m", 8)
    written, failures = index.upsert(docs_for(xb))
    assert (written, failures) == (120, [])
    index.flush()
    return index, xb


def test_search_returns_exact_nearest_with_cosine_and_distance(filled):
    index, xb = filled
    xq = xb[5] + 0.01
    hits = index.search(xq, k=5)
    exact = np.argsort(-(xb @ xq / np.linalg.norm(xq)))[:5]
    assert [hit.id for hit in hits] == [f"d{i:03d}" for i in exact]
    best = hits[0]
    cos = float(xb[exact[0]] @ xq / np.linalg.norm(xq))
    assert best.similarity == pytest.approx(cos, abs=1e-4)
    assert best.distance == pytest.approx(np.sqrt(2 - 2 * cos), abs=1e-3)
    assert best.metadata["source"] == f"/img/{exact[0]}.jpg" and best.metadata["width"] == 640


def test_filters_exclusion_and_threshold(filled):
    index, xb = filled
    hits = index.search(xb[4], k=10, category="odd")
    assert hits and all(hit.metadata["category"] == "odd" for hit in hits)
    hits = index.search(xb[4], k=10, tags=["three"])
    assert hits and all("three" in hit.metadata["tags"] for hit in hits)
    hits = index.search(xb[6], k=10, category="even", tags=["three", "all"])
    assert hits[0].id == "d006" and all(int(hit.id[1:]) % 6 == 0 for hit in hits)
    assert "d004" not in [hit.id for hit in index.search(xb[4], k=5, exclude_ids=["d004"])]
    assert [hit.id for hit in index.search(xb[4], k=10, min_similarity=0.99)] == ["d004"]
    assert index.search(xb[4], k=5, category="no-such") == []


def test_upsert_by_id_replaces_and_delete_removes(filled):
    index, xb = filled
    assert index.existing(["d001", "d002", "nope"]) == {"d001", "d002"}
    replaced = docs_for(xb[[7]])[0]
    replaced.id, replaced.category = "d001", "moved"
    assert index.upsert([replaced]) == (1, [])
    index.flush()
    assert index.count() == 120
    assert index.get("d001").category == "moved"
    assert index.search(xb[7], k=2)[0].id in {"d001", "d007"}
    assert index.delete("d002") is True
    index.flush()
    assert index.count() == 119 and index.get("d002") is None
    assert "d002" not in [hit.id for hit in index.search(xb[2], k=3)]
    assert list(index.categories()) == ["even", "moved", "odd"] and sum(index.categories().values()) == index.count()


def test_bad_vectors_are_counted_failures_not_writes(make_index):
    index = make_index("m", 8)
    good = Doc(id="ok", vector=np.eye(8, dtype=np.float32)[0], model="m")
    zero = Doc(id="zero", vector=np.zeros(8, dtype=np.float32), model="m")
    short = Doc(id="short", vector=np.ones(4, dtype=np.float32) / 2, model="m")
    written, failures = index.upsert([good, zero, short])
    index.flush()
    assert written == 1 and {doc_id for doc_id, _ in failures} == {"zero", "short"}
    assert index.count() == 1


def test_scan_yields_every_document_with_its_vector(filled):
    index, xb = filled
    scanned = {doc.id: doc for doc in index.scan(batch=50)}
    assert len(scanned) == 120
    assert np.allclose(scanned["d010"].vector, xb[10], atol=1e-6)


def test_an_index_of_another_dimension_is_refused_before_any_write(make_index, tmp_path):
    index = make_index("m", 8)
    index.upsert(docs_for(unit(np.random.default_rng(1), 3, 8)))
    index.flush()
    if make_index.backend == "embedded":
        # Same files, other dimension: the stored identity wins over the name.
        (tmp_path / f"{make_index.alias}-m-8").rename(tmp_path / f"{make_index.alias}-m-16")
    with pytest.raises(IndexMismatch, match="dimension"):
        make_index("m", 16)
    if is_opensearch(make_index.backend):
        with pytest.raises(IndexMismatch, match="model"):
            make_index("other", 8)
        assert index.count() == 3
