"""Search features and quality on real photos.

Plumbing (filters, per-category, more-like-this exclusion, dedup, the CLI) runs three times: with
the stand-in model server (fast tier) on the embedded index and on the real OpenSearch node, and
with real TorchServe on the embedded index (slow). Relevance (near duplicates, the stereo pair)
runs only with real TorchServe and the offline pretrained backbone.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import dedup, search, stack
from lookalike.copies import near_duplicate
from lookalike.errors import BadQuery, NotFound
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.ingest.pipeline import Ingestor
from lookalike.serving.client import ModelClient
from lookalike.settings import Settings
from tests.backends import NODE_FIXTURES, drop_indices, node_url, opensearch_settings

REPO = Path(__file__).resolve().parents[2]
LITE = "efficientnet_lite0"


def build_gallery(ts_url: str, photos, interiors, tmp_path_factory, opensearch_url: str | None = None):
    """All ~51 real photos ingested (subjects and interiors as categories) into an embedded index,
    or into a fresh alias on the OpenSearch node at `opensearch_url`."""
    client = ModelClient(ts_url, LITE)
    info = client.info()
    if opensearch_url:
        settings = opensearch_settings(opensearch_url, f"gallery-{uuid.uuid4().hex[:8]}", ts_url=ts_url, model=LITE)
        index = OpenSearchIndex(settings, info.model, info.dimension)
    else:
        settings = Settings(ts_url=ts_url, model=LITE, data_dir=tmp_path_factory.mktemp("idx"))
        index = EmbeddedIndex(settings.data_dir, settings.alias, info.model, info.dimension)
    folder = tmp_path_factory.mktemp("img")
    items = stack.photo_items(photos, folder, "subjects", named=True, tags=("sample",))
    items += stack.photo_items(interiors, folder, "interiors", named=True, tags=("room",))
    # No local features at ingest (tests/index/test_ingest.py covers them): the gallery serves cosine
    # searches, and the verified one makes its candidates' features from their files on first need.
    report = Ingestor(settings, index, info, concurrency=4, features=False).run(items, len(items), progress=False)
    assert report.indexed == len(items) and report.failed == 0
    index.flush()
    return index, client, {**photos, **interiors}, ts_url


GALLERIES = ["standin", *(pytest.param(f"standin-{name}", marks=pytest.mark.opensearch) for name in NODE_FIXTURES),
             pytest.param("server", marks=pytest.mark.slow)]  # fmt: skip


@pytest.fixture(scope="module", params=GALLERIES)
def gallery(request, photos, interiors, tmp_path_factory):
    """The gallery behind the stand-in (fast) or real TorchServe (slow), on the embedded index or
    the real OpenSearch node."""
    server, _, backend = request.param.partition("-")
    ts = request.getfixturevalue(server)
    url = node_url(request, backend)
    built = build_gallery(ts.inference_url, photos, interiors, tmp_path_factory, url)
    yield built
    if url:
        drop_indices(url, built[0].alias)


@pytest.fixture(scope="module")
def relevance_gallery(server, photos, interiors, tmp_path_factory):
    return build_gallery(server.inference_url, photos, interiors, tmp_path_factory)


def test_near_duplicates_are_found_first(relevance_gallery):
    """recall@1 >= 0.95 over every real photo, each queried by an augmented copy."""
    index, client, everything, _ = relevance_gallery
    rng = np.random.default_rng(42)
    hits = {
        name: search.by_image(index, client, near_duplicate(data, rng), k=1)[0].id for name, data in everything.items()
    }
    recall = np.mean([hits[name] == name for name in everything])
    assert recall >= 0.95, {name: hit for name, hit in hits.items() if hit != name}


def test_the_stereo_pair_is_more_like_each_other_than_anything_else(relevance_gallery):
    index, _, _, _ = relevance_gallery
    assert search.more_like_this(index, "motorcycle_left", k=3)[0].id == "motorcycle_right"


def test_more_like_this_excludes_itself_and_404s_unknown_ids(gallery):
    index, _, _, _ = gallery
    hits = search.more_like_this(index, "motorcycle_left", k=3)
    assert "motorcycle_left" not in [hit.id for hit in hits] and len(hits) == 3
    assert -1.0 <= hits[-1].similarity <= hits[0].similarity <= 1.0
    with pytest.raises(NotFound):
        search.more_like_this(index, "no-such-id")


def test_filters_threshold_and_per_category(gallery):
    index, client, everything, _ = gallery
    query = client.embed(everything["coffee"])
    assert {hit.metadata["category"] for hit in search.by_vector(index, query, k=5, category="interiors")} == {
        "interiors"
    }
    assert all("room" in hit.metadata["tags"] for hit in search.by_vector(index, query, k=5, tags=["room"]))
    strict = search.by_vector(index, query, k=10, min_similarity=0.9)
    assert [hit.id for hit in strict] == ["coffee"]
    groups = search.per_category(index, query, n=2)
    assert set(groups) == {"interiors", "subjects"} and groups["subjects"][0].id == "coffee"
    assert all(len(hits) == 2 for hits in groups.values())
    with pytest.raises(BadQuery):
        search.by_vector(index, query, k=0)


def test_dedup_groups_a_reencoded_copy_with_its_original(gallery, tmp_path):
    index, client, everything, _ = gallery
    copy = Image.open(io.BytesIO(everything["chelsea"]))
    buffer = io.BytesIO()
    copy.save(buffer, format="PNG")

    index.upsert([Doc(id="chelsea-copy", vector=client.embed(buffer.getvalue()), model=LITE, source="copy.png",
                      ingested_at="9999-01-01T00:00:00+00:00")])  # fmt: skip
    try:
        groups = dedup.find_groups(index, threshold=0.97)
        pair = [group for group in groups if group["keep"]["id"] == "chelsea"]
        assert pair and [dup["id"] for dup in pair[0]["duplicates"]] == ["chelsea-copy"]
        assert not [group for group in groups if group["keep"]["id"] in ("coffee", "astronaut")]
        dedup.write(groups, tmp_path / "d.csv")
        assert "chelsea-copy" in (tmp_path / "d.csv").read_text()
    finally:
        index.delete("chelsea-copy")
        index.flush()


def test_search_cli_prints_json_hits(gallery, tmp_path):
    index, _, everything, ts_url = gallery
    image = tmp_path / "q.jpg"
    image.write_bytes(everything["rocket"])
    where = (["--opensearch-url", index.settings.opensearch_url, "--alias", index.alias]
             if isinstance(index, OpenSearchIndex) else ["--data-dir", str(index.path.parent)])  # fmt: skip
    cmd = [sys.executable, "-m", "lookalike", "search", str(image), "-k", "3", "--json", "--ts-url",
           ts_url, "--model", LITE, "-v", *where]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    stages = r"^stages: embed [0-9.]+ ms, extract [0-9.]+ ms, knn [0-9.]+ ms, verify [0-9.]+ ms$"
    assert re.search(stages, result.stderr, re.M), result.stderr  # -v
    hits = json.loads(result.stdout)
    assert hits[0]["id"] == "rocket" and hits[0]["similarity"] > 0.99
    assert hits[0]["verdict"] == "copy"  # verified by default
    assert set(hits[0]) >= {"id", "similarity", "distance", "source", "category", "tags", "width", "height"}
