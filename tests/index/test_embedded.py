"""The embedded index: durable across restarts and kills, shared between processes, accurate."""

from __future__ import annotations

import numpy as np

from lookalike.index import embedded
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex


def unit(rng, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def fill(index: EmbeddedIndex, xb: np.ndarray, start: int = 0) -> None:
    docs = [Doc(id=f"d{start + i}", vector=v, model="m") for i, v in enumerate(xb)]
    assert index.upsert(docs) == (len(docs), [])


def test_reopen_after_close_keeps_everything(tmp_path):
    xb = unit(np.random.default_rng(0), 200, 16)
    index = EmbeddedIndex(tmp_path, "a", "m", 16)
    fill(index, xb)
    index.delete("d3")
    index.close()
    again = EmbeddedIndex(tmp_path, "a", "m", 16)
    assert again.count() == 199
    assert again.search(xb[10], k=1)[0].id == "d10"
    assert "d3" not in [hit.id for hit in again.search(xb[3], k=3)]


def test_a_writer_killed_before_saving_its_graph_loses_nothing(tmp_path):
    """SQLite holds every committed batch; a new process catches the graph up from it."""
    xb = unit(np.random.default_rng(1), 300, 16)
    writer = EmbeddedIndex(tmp_path, "a", "m", 16)
    fill(writer, xb[:100])
    writer.flush()  # graph saved at 100 docs ...
    fill(writer, xb[100:], start=100)  # ... then 200 more committed, and the process "dies" without saving
    reader = EmbeddedIndex(tmp_path, "a", "m", 16)
    assert reader.count() == 300
    assert reader.search(xb[250], k=1)[0].id == "d250"


def test_another_process_sees_new_writes_without_a_restart(tmp_path):
    xb = unit(np.random.default_rng(2), 50, 16)
    reader = EmbeddedIndex(tmp_path, "a", "m", 16)
    writer = EmbeddedIndex(tmp_path, "a", "m", 16)
    fill(writer, xb)
    writer.delete("d7")
    assert reader.search(xb[20], k=1)[0].id == "d20"
    assert "d7" not in [hit.id for hit in reader.search(xb[7], k=5)]


def test_hnsw_recall_at_10_against_exact_search(tmp_path):
    rng = np.random.default_rng(3)
    centres = unit(rng, 50, 64)
    xb = centres[rng.integers(0, 50, 5000)] + 0.3 * unit(rng, 5000, 64)
    xb /= np.linalg.norm(xb, axis=1, keepdims=True)
    xq = xb[rng.integers(0, 5000, 100)] + 0.05 * unit(rng, 100, 64)
    index = EmbeddedIndex(tmp_path, "a", "m", 64)
    fill(index, xb)
    truth = np.argsort(-(xq @ xb.T), axis=1)[:, :10]
    found = [[int(hit.id[1:]) for hit in index.search(q, k=10)] for q in xq]
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.98, recall


def test_lists_of_ids_longer_than_sqlites_parameter_limit_are_chunked(tmp_path):
    """existing(), exclusion and the filtered path each take 40,000 ids (SQLite's limit is 32,766
    bound parameters in many builds, 999 in older ones)."""
    xb = unit(np.random.default_rng(5), 50, 16)
    index = EmbeddedIndex(tmp_path, "a", "m", 16)
    fill(index, xb)
    many = [f"d{i}" for i in range(40_000)]
    assert index.existing(many) == {f"d{i}" for i in range(50)}
    hits = index.search(xb[0], k=5, exclude_ids=[*many[:10], *many[1000:40_000]])
    assert {hit.id for hit in hits} <= {f"d{i}" for i in range(10, 50)} and len(hits) == 5
    assert index.search(xb[7], k=1)[0].id == "d7"


def test_a_filter_too_large_for_the_exact_path_searches_the_graph_within_it(tmp_path, monkeypatch):
    """Past EXACT_LIMIT matching documents the graph is searched with the filter as an id selector:
    only matching documents come back, never an excluded or deleted one."""

    monkeypatch.setattr(embedded, "EXACT_LIMIT", 10)
    xb = unit(np.random.default_rng(6), 120, 16)
    index = EmbeddedIndex(tmp_path, "a", "m", 16)
    docs = [Doc(id=f"d{i}", vector=v, model="m", category="even" if i % 2 == 0 else "odd") for i, v in enumerate(xb)]
    assert index.upsert(docs) == (120, [])
    index.delete("d4")
    hits = index.search(xb[2], k=10, category="even", exclude_ids=["d2"])
    ids = [hit.id for hit in hits]
    assert len(ids) == 10 and all(int(i[1:]) % 2 == 0 for i in ids) and not {"d2", "d4"} & set(ids)
    assert index.search(xb[6], k=1, category="even")[0].id == "d6"
