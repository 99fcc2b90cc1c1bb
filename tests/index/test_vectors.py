"""The re-rank's vector file: a float32 copy of the stored vectors by SQLite key, filled as the graph
catches up, durable before graph.json counts it, filled again from SQLite when found short."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lookalike.errors import IndexUnavailable
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.vectors import NAME, VectorFile
from tests.index.test_embedded import fill, unit

D = 24


def test_rows_are_written_by_key_with_holes_and_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.standard_normal((6, D)).astype(np.float32)
    keys = np.array([1, 2, 3, 7, 8, 20])  # three runs
    file = VectorFile(tmp_path / NAME, D)
    file.write(keys, rows)
    assert file.upto == 20 and (tmp_path / NAME).stat().st_size == 21 * 4 * D
    assert np.array_equal(file.read([20, 1, 7]), rows[[5, 0, 3]])
    more = rng.standard_normal((2, D)).astype(np.float32)
    file.write(np.array([21, 22]), more)  # the file grew after the first read
    assert np.array_equal(file.read([22, 2]), np.stack([more[1], rows[1]]))
    with pytest.raises(IndexUnavailable, match="ends before row 23"):
        file.read([2, 23])
    file.sync()
    file.close()
    again = VectorFile(tmp_path / NAME, D, upto=40)  # graph.json said more than the file holds: trust the file
    assert again.upto == 22 and np.array_equal(again.read([8]), rows[[4]])
    again.close()


def test_a_failed_write_names_the_file_and_counts_nothing(tmp_path, monkeypatch):
    file = VectorFile(tmp_path / NAME, D)
    file.write(np.array([1]), np.ones((1, D), dtype=np.float32))

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(IndexUnavailable, match=f"vector file {tmp_path / NAME}: .*No space left"):
        file.write(np.array([2, 3]), np.ones((2, D), dtype=np.float32))
    assert file.upto == 1
    file.close()


def test_the_re_rank_reads_the_file_and_scores_as_sqlite_stores(tmp_path):
    rng = np.random.default_rng(1)
    xb = unit(rng, 300, D) * 3.0  # stored as given: scores are the dot product with the unit query
    index = EmbeddedIndex(tmp_path, "a", "m", D)
    fill(index, xb)
    query = unit(rng, 1, D)[0]
    hits = index.search(query, k=5)
    assert index.graph.vectors.upto == 300
    for hit in hits:
        assert hit.similarity == pytest.approx(min(1.0, float(xb[int(hit.id[1:])] @ query)), abs=1e-6)
    assert [hit.id for hit in hits] == [f"d{i}" for i in np.argsort(-(xb @ query))[:5]]
    index.close()
    state = json.loads((index.path / "graph.json").read_text())
    assert state["vectors_upto"] == 300


def test_a_short_or_missing_file_is_filled_again_from_sqlite(tmp_path):
    rng = np.random.default_rng(2)
    xb = unit(rng, 200, D)
    index = EmbeddedIndex(tmp_path, "a", "m", D)
    fill(index, xb)
    index.close()
    path = index.path / NAME
    with path.open("r+b") as handle:  # a copy cut short (a disk restored from an older snapshot)
        handle.truncate(120 * 4 * D + 10)
    again = EmbeddedIndex(tmp_path, "a", "m", D)
    assert again.graph.vectors.upto == 200 and path.stat().st_size == 201 * 4 * D
    assert np.array_equal(again.graph.vectors.read(list(range(1, 201))), xb)
    again.close()
    path.unlink()  # an index made before the file existed: graph.json has no vectors_upto either
    state = json.loads((index.path / "graph.json").read_text())
    del state["vectors_upto"]
    (index.path / "graph.json").write_text(json.dumps(state))
    upgraded = EmbeddedIndex(tmp_path, "a", "m", D)
    assert upgraded.search(xb[17], k=1)[0].id == "d17"
    assert np.array_equal(upgraded.graph.vectors.read(list(range(1, 201))), xb)
    upgraded.close()


def test_a_document_deleted_after_the_graph_caught_up_gives_its_place_to_the_next(tmp_path):
    rng = np.random.default_rng(3)
    xb = unit(rng, 100, D)
    index = EmbeddedIndex(tmp_path, "a", "m", D)
    fill(index, xb)
    query = xb[5]
    order = [int(i) + 1 for i in np.argsort(-(xb @ query))[:8]]  # keys are row + 1
    index.search(query, k=1)  # the graph and the file hold every row
    index.db.execute("DELETE FROM docs WHERE key = ?", (order[0],))  # gone between the walk and the re-rank
    index.db.commit()
    hits = index._hits(order, query, 4, None)
    assert [hit.id for hit in hits] == [f"d{key - 1}" for key in order[1:5]]
    index.close()
