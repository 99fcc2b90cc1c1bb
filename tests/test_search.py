"""lookalike.search's limits (fast: an embedded index, no model server)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike import search
from lookalike.errors import BadQuery
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex


def test_per_category_is_refused_past_the_category_cap_and_bounded_in_n(tmp_path):
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((6, 8)).astype(np.float32)
    index = EmbeddedIndex(tmp_path, "a", "m", 8)
    index.upsert([Doc(id=f"d{i}", vector=v, model="m", category=f"c{i % 3}") for i, v in enumerate(xb)])
    groups = search.per_category(index, xb[0], 2, max_categories=3)
    assert sorted(groups) == ["c0", "c1", "c2"] and all(len(hits) == 2 for hits in groups.values())
    with pytest.raises(BadQuery, match=r"this index has 3; the limit is 2 \(LOOKALIKE_MAX_CATEGORIES\)") as caught:
        search.per_category(index, xb[0], 2, max_categories=2)
    assert caught.value.status == 400
    with pytest.raises(BadQuery, match="per_category must be between 1 and 100"):
        search.per_category(index, xb[0], 101)
    with pytest.raises(BadQuery, match="k must be between 1 and 1000"):
        search.by_vector(index, xb[0], k=1001)
