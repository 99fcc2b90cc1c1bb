"""Local features on OpenSearch are shared: written once at ingest, read by an API replica and a
de-duplication on "another host" (another home and data folder, the images' files gone), neither of
which makes or fetches anything. The real node; the stand-in model server."""

from __future__ import annotations

import io
import uuid

import numpy as np
import requests
from PIL import Image

from lookalike import dedup, stack
from lookalike.api import process
from lookalike.copies import captioned
from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.ingest.pipeline import Ingestor
from lookalike.serving.client import ModelClient
from tests.backends import drop_indices, opensearch_settings

LITE = "efficientnet_lite0"


def crop(data: bytes) -> bytes:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    buffer = io.BytesIO()
    img.crop((200, 60, 360, 220)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_a_replica_and_a_dedup_elsewhere_verify_from_the_clusters_features(standin, plain_opensearch_url, photos,
                                                                           tmp_path):  # fmt: skip
    alias = f"shared-{uuid.uuid4().hex[:8]}"
    here = opensearch_settings(plain_opensearch_url, alias, ts_url=standin.inference_url, model=LITE,
                               home=tmp_path / "a", data_dir=tmp_path / "a")  # fmt: skip
    images = {"chelsea": photos["chelsea"], "coffee": photos["coffee"], "rocket": photos["rocket"],
              "chelsea-meme": captioned(photos["chelsea"], np.random.default_rng(0))}  # fmt: skip
    try:
        info = ModelClient(standin.inference_url, LITE).info()
        index = OpenSearchIndex(here, info.model, info.dimension)
        items = stack.photo_items(images, tmp_path / "files", "photos", named=True)
        report = Ingestor(here, index, info, concurrency=2).run(items, len(items), progress=False)
        assert report.indexed == len(images), report.summary()
        for path in (tmp_path / "files").rglob("*.jpg"):
            path.unlink()  # nothing can be made from a source from here on
        elsewhere = opensearch_settings(plain_opensearch_url, alias, ts_url=standin.inference_url, model=LITE,
                                        home=tmp_path / "b", data_dir=tmp_path / "b")  # fmt: skip
        with process.ApiThread(elsewhere) as api:
            found = requests.post(f"{api.url}/search", params={"k": 3}, data=crop(photos["chelsea"]), timeout=120)
            assert found.status_code == 200, found.text
            hits = found.json()["hits"]
            assert hits[0]["id"] in ("chelsea", "chelsea-meme") and hits[0]["verdict"] == "part", hits[0]
            assert all(hit["verdict"] != "unverified" for hit in hits), hits  # every one read from the cluster
        other = opensearch_settings(plain_opensearch_url, alias, ts_url=standin.inference_url, model=LITE,
                                    home=tmp_path / "c", data_dir=tmp_path / "c")  # fmt: skip
        index = OpenSearchIndex(other, info.model, info.dimension)
        found = dedup.run(index, other, threshold=-1.0, progress=False)
        assert [(g["keep"]["id"], [d["id"] for d in g["duplicates"]]) for g in found.groups] == [
            ("chelsea", ["chelsea-meme"])
        ]
        assert not found.missing, found.missing
        assert not list((tmp_path / "b").rglob("*.features.sqlite"))  # no local copy was made
    finally:
        drop_indices(plain_opensearch_url, alias)
