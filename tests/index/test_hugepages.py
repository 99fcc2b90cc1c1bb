"""Huge pages under the embedded graph: the arrays advised are the graph's own, the advice changes
no answer, and the graph asks again only when its arrays may have moved (loaded, rebuilt, grown).
The speed it buys is `lookalike bench index`'s to show, not a test's."""

from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np

from lookalike.index import hugepages
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from tests.index.test_embedded import unit


def thp_mode() -> str:
    path = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    text = path.read_text() if path.exists() else ""
    return text[text.find("[") + 1 : text.find("]")] if "[" in text else "never"


def test_the_graph_arrays_are_found_and_the_advice_changes_no_answer(monkeypatch):
    rng = np.random.default_rng(0)
    xb, xq = unit(rng, 8192, 128), unit(rng, 20, 128)
    index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(128, 4, faiss.METRIC_INNER_PRODUCT))
    index.add_with_ids(xb, np.arange(len(xb), dtype=np.int64) + 1000)
    inner = faiss.downcast_index(index.index)
    monkeypatch.setattr(hugepages, "SMALLEST", 0)
    found = sorted(size for _, size in hugepages.arrays(index))
    assert found == sorted([inner.hnsw.neighbors.size() * 4, xb.nbytes])  # the neighbour lists and the vectors
    before = index.search(xq, 10)
    advised = hugepages.back(index)
    assert advised % hugepages.HUGE_PAGE == 0 and advised <= sum(found)
    if sys.platform.startswith("linux") and thp_mode() != "never":
        assert advised >= hugepages.HUGE_PAGE  # 4 MB of vectors hold at least one whole 2 MB page
    after = index.search(xq, 10)
    assert np.array_equal(before[1], after[1]) and np.array_equal(before[0], after[0])


def test_small_arrays_are_left_alone():
    index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(8, 4))
    assert hugepages.arrays(index) == [] and hugepages.back(index) == 0  # empty: no address at all
    index.add_with_ids(unit(np.random.default_rng(1), 100, 8), np.arange(100, dtype=np.int64))
    assert hugepages.arrays(index) == []


def test_the_graph_asks_again_only_when_its_arrays_may_have_moved(tmp_path, monkeypatch):
    asked: list[int] = []
    monkeypatch.setattr(hugepages, "back", lambda index: asked.append(index.ntotal) or 0)
    rng = np.random.default_rng(2)
    index = EmbeddedIndex(tmp_path, "a", "m", 16)
    index.upsert([Doc(id=f"d{i}", vector=v, model="m") for i, v in enumerate(unit(rng, 50, 16))])
    index.search(unit(rng, 1, 16)[0], k=3)
    grown = len(asked)
    assert asked[-1] == 50
    for query in unit(rng, 5, 16):
        index.search(query, k=3)
    assert len(asked) == grown  # searches alone: nothing moved
    index.upsert([Doc(id="e", vector=unit(rng, 1, 16)[0], model="m")])
    index.search(unit(rng, 1, 16)[0], k=3)
    assert asked[-1] == 51 and len(asked) == grown + 1
    index.close()
    EmbeddedIndex(tmp_path, "a", "m", 16).close()  # a graph read from disk: new arrays
    assert len(asked) == grown + 2
