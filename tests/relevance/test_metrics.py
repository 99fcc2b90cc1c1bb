"""recall@k and mAP@10 on hand-made rankings whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.relevance.evaluate import classes
from lookalike.relevance.metrics import per_query, rankings, score


def test_recall_and_average_precision_by_hand():
    # 3 queries over a gallery of 12; rankings given directly.
    ranked = np.array([
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],   # right answers 0 and 2: ranks 1 and 3
        [5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 10, 11],   # right answer 9: rank 5
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0],   # right answer 0: rank 12, outside the top 10
    ])  # fmt: skip
    relevant = np.zeros((3, 12), dtype=bool)
    relevant[0, [0, 2]] = True
    relevant[1, 9] = True
    relevant[2, 0] = True
    hits, ap = per_query(ranked, relevant)
    assert hits.shape == (3, 10)
    # AP@10: query 0 = (1/1 + 2/3) / 2; query 1 = (1/5) / 1; query 2 = 0
    assert ap == pytest.approx([(1 + 2 / 3) / 2, 1 / 5, 0.0])
    scores = score(ranked, relevant)
    assert scores.recall == pytest.approx({1: 1 / 3, 5: 2 / 3, 10: 2 / 3})
    assert scores.map_at_10 == pytest.approx(((1 + 2 / 3) / 2 + 1 / 5) / 3)
    assert score(ranked, relevant, np.array([False, True, False])).recall[1] == 0.0


def test_rankings_order_by_cosine_and_drop_what_is_excluded():
    gallery = np.eye(3, dtype=np.float32)
    queries = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]], dtype=np.float32)
    assert rankings(queries, gallery).tolist() == [[0, 1, 2], [2, 1, 0]]
    exclude = np.array([[True, False, False], [False, False, False]])
    assert rankings(queries, gallery, exclude)[0].tolist()[:2] == [1, 2]


def test_leave_one_out_classes_on_two_clean_clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    vectors = np.vstack([centres[i // 5] + 0.05 * rng.standard_normal(4) for i in range(10)])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = ["a"] * 5 + ["b"] * 5
    result = classes(vectors.astype(np.float32), labels)
    assert result["overall"].recall[1] == 1.0 and result["overall"].map_at_10 == pytest.approx(1.0)
    assert result["a"].queries == result["b"].queries == 5
    # a class of one image has no right answer: it is in the gallery, never a query
    lonely = classes(np.vstack([vectors, [[0, 0, 1.0, 0]]]).astype(np.float32), [*labels, "c"])
    assert lonely["c"].queries == 0 and lonely["overall"].queries == 10
