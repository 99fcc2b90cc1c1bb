"""Search's re-ranking (lookalike.verify.rerank) on real photos' features in the embedded feature
store (fast: no index, no server)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image

from lookalike.index.documents import Hit
from lookalike.settings import Settings
from lookalike.verify import Features, extract
from lookalike.verify.rerank import rerank
from lookalike.verify.store import SqliteFeatures

OTHERS = ("astronaut", "rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field", "immunohistochemistry",
          "retina", "china", "flower", "colorwheel", "chelsea")  # fmt: skip


@pytest.fixture(scope="module")
def crop_and_store(photos, tmp_path_factory) -> Iterator[tuple[Features, SqliteFeatures]]:
    """A 60 % window of the coffee photo as the query; its photo, eleven unrelated photos, and a
    recompressed copy of the window itself in the store."""
    img = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    w, h = img.size
    window = img.crop((w // 5, h // 5, w * 4 // 5, h * 4 // 5))
    buffer = io.BytesIO()
    window.save(buffer, format="JPEG", quality=70)
    store = SqliteFeatures(tmp_path_factory.mktemp("features"), "rerank", Settings.max_image_bytes)
    for name in ("coffee", *OTHERS):
        store.put(name, extract(photos[name]))
    store.put("window-copy", extract(buffer.getvalue()))
    yield extract(window), store
    store.close()


def hits(order: list[str]) -> list[Hit]:
    return [Hit(id=doc_id, similarity=0.9 - 0.01 * at, metadata={}) for at, doc_id in enumerate(order)]


def test_a_copy_among_the_candidates_after_k_comes_first_when_the_nearest_does_not_hold_the_query(crop_and_store):
    query, store = crop_and_store
    found = rerank(hits([*OTHERS, "window-copy", "coffee"]), query, store, k=10)
    assert [hit.id for hit in found[:2]] == ["window-copy", "coffee"]
    assert [hit.verdict["verdict"] for hit in found[:2]] == ["copy", "part"]  # type: ignore[index]
    assert len(found) == 13 and all(hit.verdict for hit in found)


def test_when_the_nearest_holds_the_query_the_candidates_after_k_are_not_judged(crop_and_store):
    """The nearest is the photo the query was cut from (a part): the answer is found, and the
    candidates after the first k are dropped unjudged - the copy at rank 12 too."""
    query, store = crop_and_store
    found = rerank(hits(["coffee", *OTHERS[:9], "chelsea", "window-copy"]), query, store, k=10)
    assert found[0].id == "coffee" and found[0].verdict["verdict"] == "part"  # type: ignore[index]
    assert [hit.id for hit in found] == ["coffee", *OTHERS[:9]]
