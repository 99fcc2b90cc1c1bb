"""`lookalike admin recall`: the index measures its own recall (embedded index in the fast tier,
each real OpenSearch node in the full one).

The estimate is checked against a brute-force truth computed here, independently; a recorded
efSearch is used after a restart, and by a process that already held the index open; a target
no efSearch reaches is a clear message with the best found, and nothing is recorded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.cli.main import main
from lookalike.index import recall
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex

LITE = "efficientnet_lite0"


def filled(path, n: int, d: int, m: int = 16, ef_construction: int = 100, seed: int = 0, model: str = "m"):
    """An embedded index of n unit vectors shaped like embeddings: a few hundred directions plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(2, n // 8), d)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = EmbeddedIndex(path, "lookalike", model, d, m=m, ef_construction=ef_construction)
    assert index.upsert([Doc(id=f"d{i}", vector=x[i], model=model) for i in range(n)])[0] == n
    return index, x


def brute_force_recall(index, x: np.ndarray, found: recall.Estimate, ef_search: int) -> float:
    """Recall@10 of `index` at `ef_search` on the estimate's own queries, against a truth computed here."""
    ids = np.array([f"d{i}" for i in range(len(x))])
    hits = 0
    for own, query in found.queries:
        scores = x @ query
        scores[ids == own] = -np.inf
        truth = set(ids[np.argsort(-scores)[:10]])
        got = index.search(query, 10, exclude_ids=[own], by_regions=False, ef_search=ef_search)
        hits += len({hit.id for hit in got} & truth)
    return hits / (10 * len(found.queries))


def test_the_estimate_matches_a_brute_force_truth(tmp_path):
    index, x = filled(tmp_path, 1500, 32, m=4, ef_construction=8)
    found = recall.estimate(index, k=10, sample=60, ef_values=(4, 64, 512), seed=3)
    for row in found.rows:  # the stated tolerance
        assert row["recall"] == pytest.approx(brute_force_recall(index, x, found, row["ef_search"]), abs=0.005)
    recalls = [row["recall"] for row in found.rows]
    assert recalls == sorted(recalls) and recalls[-1] > 0.99  # more candidates, no less recall
    assert all(own not in truth for (own, _), truth in zip(found.queries, recall.exact_top(index, found.queries, 10),
                                                          strict=True))  # fmt: skip
    index.close()


def test_a_recorded_ef_search_is_used_after_a_restart(standin, tmp_path, capsys):
    index, _ = filled(tmp_path, 1200, 1280, model=LITE)
    index.flush()
    index.tuning.reread = 0  # an API that holds the index open: it reads the record again as it searches
    assert index.describe()["ef_search_from"] == "settings (LOOKALIKE_EF_SEARCH)"
    where = ["--ts-url", standin.inference_url, "--model", LITE, "--data-dir", str(tmp_path)]
    assert main(["admin", "recall", "--target", "0.9", "--sample", "40", "--ef-search", "24,48", *where]) == 0
    printed = capsys.readouterr().out
    assert "recorded efSearch" in printed and "efSearch  recall" in printed
    again = EmbeddedIndex(tmp_path, "lookalike", LITE, 1280)  # a restart: the value comes from the index
    described = again.describe()
    chosen = again.tuning.recorded["chosen"]
    assert chosen["ef_search"] in (24, 48) and chosen["recall"] >= 0.9 and described["ef_search"] == chosen["ef_search"]
    assert described["recall"]["estimate"] >= 0.9 and described["ef_search_from"].endswith("--target 0.9")
    assert index.describe()["ef_search"] == chosen["ef_search"]  # the process that was already running
    index.close()
    again.close()
    assert main(["admin", "info", *where]) == 0
    assert json.loads(capsys.readouterr().out)["ef_search"] == described["ef_search"]


def test_a_target_no_ef_search_reaches_is_a_clear_message_and_nothing_is_recorded(standin, tmp_path, capsys,
                                                                                  monkeypatch):  # fmt: skip
    """The estimate is a stand-in here (a graph too poor for the target is slow to build on purpose):
    what is under test is the command's answer to it."""
    index, _ = filled(tmp_path, 300, 1280, model=LITE)
    index.close()
    rows = [{"ef_search": ef, "recall": r, "p50_ms": 0.1} for ef, r in ((16, 0.81), (1024, 0.93))]
    monkeypatch.setattr(recall, "estimate", lambda *a, **kw: recall.Estimate(10, rows, [("d0", np.ones(4))]))
    where = ["--ts-url", standin.inference_url, "--model", LITE, "--data-dir", str(tmp_path)]
    assert main(["admin", "recall", "--target", "0.95", *where]) == 1
    err = capsys.readouterr().err
    assert "0.95 is not reached" in err and "best is 0.93 at efSearch 1024" in err
    assert EmbeddedIndex(tmp_path, "lookalike", LITE, 1280).tuning.recorded is None
    assert main(["admin", "recall", "--target", "1.5", *where]) == 2  # not a recall


def test_the_estimate_on_a_real_opensearch_node_matches_a_brute_force_truth(opensearch_url):
    """The same estimate through OpenSearch (scroll for the exact truth, efSearch sent per request)."""
    import uuid

    from tests.backends import drop_indices, opensearch_settings

    alias = f"t-{uuid.uuid4().hex[:10]}"
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = OpenSearchIndex(opensearch_settings(opensearch_url, alias), "m", 16)
    try:
        assert index.upsert([Doc(id=f"d{i}", vector=x[i], model="m") for i in range(len(x))])[0] == len(x)
        index.refresh()
        found = recall.estimate(index, k=10, sample=20, ef_values=(10, 200), seed=1)
        for row in found.rows:
            assert row["recall"] == pytest.approx(brute_force_recall(index, x, found, row["ef_search"]), abs=0.005)
        assert found.rows[-1]["recall"] > 0.95
    finally:
        drop_indices(opensearch_url, alias)


def test_a_recorded_ef_search_lives_in_the_opensearch_mapping_and_is_sent_after_a_restart(opensearch_url, standin,
                                                                                          capsys):  # fmt: skip
    """On each real node: `admin recall --target` writes the chosen efSearch into the index mapping's
    _meta beside model, dimension and regions (a reopened index still passes its identity check),
    and a fresh process's searches send it."""
    import uuid

    from tests.backends import drop_indices, opensearch_settings

    settings = opensearch_settings(opensearch_url, f"t-{uuid.uuid4().hex[:10]}")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((300, 1280)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = OpenSearchIndex(settings, LITE, 1280)
    try:
        assert index.upsert([Doc(id=f"d{i}", vector=x[i], model=LITE) for i in range(len(x))])[0] == len(x)
        index.refresh()
        where = ["--opensearch-url", opensearch_url, "--alias", settings.alias, "--ts-url", standin.inference_url,
                 "--model", LITE]  # fmt: skip
        assert main(["admin", "recall", "--target", "0.9", "--sample", "30", "--ef-search", "300,400", *where]) == 0
        assert "recorded efSearch 300" in capsys.readouterr().out
        again = OpenSearchIndex(settings, LITE, 1280)  # a restart: identity checked, the value read from the mapping
        meta = again.client.indices.get_mapping(index=again.name)[again.name]["mappings"]["_meta"]
        assert meta["model"] == LITE and meta["dimension"] == 1280 and meta["recall"]["chosen"]["ef_search"] == 300
        sent = []
        search = again.client.search
        again.client.search = lambda **kw: sent.append(kw["body"]) or search(**kw)
        again.search(x[0], 5)
        assert [body["query"]["knn"]["vector"]["method_parameters"] for body in sent] == [{"ef_search": 300}]
        described = again.describe()
        assert described["ef_search"] == 300 and described["ef_search_from"].endswith("--target 0.9")
        assert described["recall"]["estimate"] >= 0.9
    finally:
        drop_indices(opensearch_url, settings.alias)
