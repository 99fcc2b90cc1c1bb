"""Region vectors in the embedded index: many vectors per image, one hit per image, kept consistent
by upsert and delete, and an index that refuses to mix region schemes."""

from __future__ import annotations

import numpy as np
import pytest
from lookalike_handler.regions import SCHEMES

from lookalike import dedup
from lookalike.errors import IndexMismatch
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex

D = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, D)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def doc(doc_id: str, rng: np.random.Generator, scheme: str = "grid2") -> Doc:
    vectors = unit(rng, 1 + len(SCHEMES[scheme]))
    return Doc(id=doc_id, vector=vectors[0], model="m", region_scheme=scheme,
               regions=list(zip(SCHEMES[scheme], vectors[1:], strict=True)))  # fmt: skip


@pytest.fixture
def index(tmp_path):
    return EmbeddedIndex(tmp_path, "a", "m", D, regions="grid2")


def test_a_region_match_finds_its_image_once_with_the_region_box(index):
    rng = np.random.default_rng(0)
    docs = [doc(f"d{i}", rng) for i in range(50)]
    assert index.upsert(docs) == (50, [])
    box, region_vector = docs[7].regions[2]
    hits = index.search(region_vector, k=5)
    assert hits[0].id == "d7" and hits[0].box == box and hits[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert [hit.id for hit in hits].count("d7") == 1  # one hit per image, however many of its vectors match
    whole = index.search(docs[7].vector, k=1)[0]
    assert whole.id == "d7" and whole.box is None
    assert whole.to_dict().get("box") is None and hits[0].to_dict()["box"] == list(box)


@pytest.mark.parametrize("category", [None, "all"])  # the graph's search, and the exact filtered path
def test_whole_image_scores_leave_the_regions_out(index, category):
    """by_regions=False (dedup's scoring): an image scores by its whole vector only."""
    rng = np.random.default_rng(6)
    docs = [doc(f"d{i}", rng) for i in range(50)]
    for d in docs:
        d.category = "all"
    index.upsert(docs)
    _, region_vector = docs[7].regions[2]
    hits = index.search(region_vector, k=50, category=category, by_regions=False)
    assert len(hits) == 50 and all(hit.box is None for hit in hits)
    by_id = {hit.id: hit.similarity for hit in hits}
    assert by_id["d7"] == pytest.approx(float(docs[7].vector @ region_vector), abs=1e-5)
    assert index.search(docs[7].vector, k=1, category=category, by_regions=False)[0].id == "d7"


def test_upsert_replaces_every_region_and_delete_removes_them_all(index):
    rng = np.random.default_rng(1)
    index.upsert([doc(f"d{i}", rng) for i in range(20)])
    old = index.get("d3")
    assert old is not None and len(old.regions) == 4
    new = doc("d3", rng)
    index.upsert([new])
    assert index.search(old.regions[1][1], k=1)[0].similarity < 0.99  # the old region vector is gone
    assert index.search(new.regions[1][1], k=1)[0].id == "d3"
    assert index.db.execute("SELECT COUNT(*) FROM regions").fetchone()[0] == 20 * 4
    assert index.delete("d3")
    assert "d3" not in {hit.id for vector in (new.vector, *(v for _, v in new.regions))
                        for hit in index.search(vector, k=3)}  # fmt: skip
    assert index.db.execute("SELECT COUNT(*) FROM regions").fetchone()[0] == 19 * 4


def test_regions_survive_a_restart_and_filters_see_them(tmp_path):
    rng = np.random.default_rng(2)
    index = EmbeddedIndex(tmp_path, "a", "m", D, regions="grid2")
    docs = [doc(f"d{i}", rng) for i in range(30)]
    for i, d in enumerate(docs):
        d.category = "odd" if i % 2 else "even"
    index.upsert(docs)
    index.close()
    again = EmbeddedIndex(tmp_path, "a", "m", D, regions="grid2")
    box, vector = docs[5].regions[3]
    assert again.search(vector, k=1)[0].box == box
    hit = again.search(vector, k=1, category="odd")[0]
    assert hit.id == "d5" and hit.box == box
    assert "d5" not in {hit.id for hit in again.search(vector, k=3, category="even")}
    assert "d5" not in {hit.id for hit in again.search(vector, k=3, exclude_ids=["d5"])}


def test_the_index_refuses_to_mix_region_schemes(tmp_path):
    rng = np.random.default_rng(3)
    index = EmbeddedIndex(tmp_path, "a", "m", D, regions="grid2")
    written, failures = index.upsert([doc("whole-only", rng, "none"), doc("nine", rng, "win2"), doc("ok", rng)])
    assert written == 1 and [doc_id for doc_id, _ in failures] == ["whole-only", "nine"]
    assert "the index holds regions grid2" in failures[0][1]
    index.close()
    with pytest.raises(IndexMismatch, match="regions is 'grid2', not 'win2'"):
        EmbeddedIndex(tmp_path, "a", "m", D, regions="win2")


def test_an_index_made_before_region_vectors_opens_as_one_without_regions(tmp_path):
    index = EmbeddedIndex(tmp_path, "a", "m", D)
    index.upsert([doc("x", np.random.default_rng(4), "none")])
    with index.db:
        index.db.execute("DELETE FROM meta WHERE key = 'regions'")  # as an older version left it
    index.close()
    again = EmbeddedIndex(tmp_path, "a", "m", D)
    assert again.describe()["regions"] == "none" and again.get("x") is not None
    with pytest.raises(IndexMismatch):
        EmbeddedIndex(tmp_path, "a", "m", D, regions="grid2")


@pytest.mark.opensearch
def test_on_the_opensearch_node_nested_region_vectors_give_one_hit_per_image(opensearch_url):
    """Regions as nested knn_vector documents on the real node (Lucene engine)."""
    from tests.backends import drop_indices, opensearch_settings

    alias = "t-regions"
    rng = np.random.default_rng(5)
    try:
        index = OpenSearchIndex(opensearch_settings(opensearch_url, alias, regions="grid2"), "m", D)
        docs = [doc(f"d{i}", rng) for i in range(30)]
        for i, d in enumerate(docs):
            d.category = "odd" if i % 2 else "even"
        assert index.upsert([*docs, doc("whole-only", rng, "none")])[0] == 30
        index.refresh()
        box, vector = docs[9].regions[1]
        hits = index.search(vector, k=5)
        assert hits[0].id == "d9" and hits[0].box == box and hits[0].similarity == pytest.approx(1.0, abs=1e-4)
        assert len({hit.id for hit in hits}) == len(hits)  # each image once
        whole = index.search(docs[9].vector, k=1)[0]
        assert whole.id == "d9" and whole.box is None
        whole_only = {hit.id: hit for hit in index.search(vector, k=30, by_regions=False)}
        assert all(hit.box is None for hit in whole_only.values())
        assert whole_only["d9"].similarity == pytest.approx(float(docs[9].vector @ vector), abs=1e-3)
        assert index.search(vector, k=3, category="odd")[0].id == "d9"
        assert "d9" not in {hit.id for hit in index.search(vector, k=3, category="even")}
        assert "d9" not in {hit.id for hit in index.search(vector, k=3, exclude_ids=["d9"])}
        replaced = doc("d9", rng)
        index.upsert([replaced])
        index.refresh()
        assert index.search(vector, k=1)[0].similarity < 0.99  # the old regions went with the old document
        got = index.get("d9")
        assert got is not None and [b for b, _ in got.regions] == SCHEMES["grid2"]
        assert index.delete("d9")
        index.refresh()
        assert "d9" not in {hit.id for hit in index.search(replaced.regions[0][1], k=3)}
        with pytest.raises(IndexMismatch, match="regions is 'grid2', not 'none'"):
            OpenSearchIndex(opensearch_settings(opensearch_url, alias), "m", D)
    finally:
        drop_indices(opensearch_url, alias)


def test_dedup_groups_by_whole_images_unless_asked_for_region_scores(index):
    """A crop (its whole vector is a region of another image) is grouped only with by_regions=True."""

    rng = np.random.default_rng(7)
    docs = [doc(f"d{i}", rng) for i in range(20)]
    crop = doc("crop-of-d3", rng)
    crop.vector = docs[3].regions[1][1].copy()
    assert float(crop.vector @ docs[3].vector) < 0.85
    index.upsert([*docs, crop])
    assert dedup.find_groups(index, threshold=0.95) == []
    groups = dedup.find_groups(index, threshold=0.95, by_regions=True)
    assert len(groups) == 1
    assert {groups[0]["keep"]["id"], *(dup["id"] for dup in groups[0]["duplicates"])} == {"d3", "crop-of-d3"}
