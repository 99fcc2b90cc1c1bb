"""Blue/green rollout of a model whose vectors live in another space (lookalike.rollout, the live
record lookalike.index.live), on the embedded index and the real OpenSearch node.

Slow tier (15 s on the embedded index alone): the stand-in model server (tests/standin.py: our
wire format, NOT TorchServe) serves efficientnet_lite0 (1280-d) and resnet50-random (2048-d), and
the API runs in this process. The same rollout under Locust load with real TorchServe is
tests/operations/test_rollout.py."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from lookalike import rollout, stack
from lookalike.api.process import ApiThread
from lookalike.index import live
from lookalike.settings import Settings
from tests.backends import BACKENDS, drop_indices, node_url, opensearch_settings

pytestmark = pytest.mark.slow
LITE, RESNET = "efficientnet_lite0", "resnet50-random"


@pytest.fixture(params=BACKENDS)
def catalogue(request, standin, photos, tmp_path):
    """Settings of a fresh catalogue holding the subject photos by lite0, on each backend."""
    more = {"ts_url": standin.inference_url, "model": LITE, "thumb_dir": tmp_path / "thumbs", "home": tmp_path}
    url = node_url(request, request.param)
    if url:
        settings = opensearch_settings(url, f"t-roll-{uuid.uuid4().hex[:8]}", **more)
    else:
        settings = Settings(data_dir=tmp_path / "index", **more)
    subjects = dict(list(photos.items())[:-2])  # the last two arrive later, through the API
    stack.ingest(settings, stack.photo_items(subjects, tmp_path / "photos", "subjects", named=True))
    yield settings, subjects
    if url:
        drop_indices(url, settings.alias)


def search(api: ApiThread, image: bytes) -> dict:
    answer = httpx.post(f"{api.url}/search?k=3&verify=false", content=image, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_rollout_switches_model_and_index_together_and_rolls_back(catalogue, tmp_path):
    settings, subjects = catalogue
    name, image = next(iter(subjects.items()))
    with ApiThread(settings) as api:
        assert search(api, image)["model"] == LITE
        said: list[str] = []
        outcome = rollout.run(settings, RESNET, concurrency=2, progress=False, say=said.append, settle=1.2)
        assert outcome.switched, said
        assert outcome.report.indexed == len(subjects) and outcome.found == outcome.sampled > 0
        state = live.read(settings)
        assert state.live.endpoint == RESNET and state.live.dimension == 2048 and state.next is None
        wait_for_model(api, image, "resnet50")  # each replica reads the record within a second
        hits = search(api, image)["hits"]
        assert hits[0]["id"] == name and hits[0]["model"] == "resnet50"
        assert "Roll back: lookalike admin rollout --model efficientnet_lite0" in said[-1]

        # the CLI follows the live record: the configured endpoint is still lite0
        connected = stack.connect(settings)
        try:
            assert connected.info.model == "resnet50" and connected.index.count() == len(subjects)
        finally:
            connected.close()

        back = rollout.run(settings, LITE, concurrency=2, progress=False, say=said.append, settle=1.2)
        assert back.switched and live.read(settings).live.endpoint == LITE
        wait_for_model(api, image, "efficientnet_lite0")
        assert search(api, image)["hits"][0]["id"] == name


def test_writes_during_the_build_reach_both_indexes_and_a_resumed_rollout_keeps_them(catalogue, photos, tmp_path):
    settings, subjects = catalogue
    extra = [data for name, data in photos.items() if name not in subjects][:2]
    gone = next(iter(subjects))
    key = {"Authorization": "Bearer sesame"}
    said: list[str] = []
    with ApiThread(settings.replace(api_key="sesame")) as api:
        # PUT with no source URL before the rollout: the live index only, and nothing to embed it from
        assert httpx.put(f"{api.url}/images/uploaded", content=extra[0], headers=key, timeout=60).status_code == 201
        current = rollout.configured(settings)
        nxt = rollout._fresh(settings, RESNET, "resnet50", 2048)
        live.begin(settings, current, nxt)  # as if a rollout had been interrupted after it started
        time.sleep(1.2)  # the API reads the record again
        assert httpx.put(f"{api.url}/images/late", content=extra[1], headers=key, timeout=60).status_code == 201
        assert httpx.delete(f"{api.url}/images/{gone}", headers=key, timeout=60).status_code == 204
        new = rollout.opened(settings, nxt)
        try:
            assert new.existing(["late", "uploaded"]) == {"late"}  # written during the build: in the next index too
            assert new.get("late").model == "resnet50"
        finally:
            new.close()

        outcome = rollout.run(settings, RESNET, concurrency=2, progress=False, say=said.append, settle=1.2)
        assert said[0].startswith("resuming the rollout"), said
        assert not outcome.switched and "without a source URL" in " ".join(outcome.problems)  # waits for it
        assert live.read(settings).next == nxt  # still building: writes still reach both

        assert httpx.put(f"{api.url}/images/uploaded", content=extra[0], headers=key, timeout=60).status_code == 200
        outcome = rollout.run(settings, RESNET, concurrency=2, progress=False, say=said.append, settle=1.2)
        assert outcome.switched, outcome.problems
        wait_for_model(api, extra[1], "resnet50")
        connected = stack.connect(settings)
        try:
            assert connected.index.existing(["late", "uploaded", gone]) == {"late", "uploaded"}
            assert connected.index.count() == len(subjects) + 1
        finally:
            connected.close()

        # a rollout that builds is abandoned by naming the live model
        live.begin(settings, live.read(settings).live, rollout._fresh(settings, LITE, "efficientnet_lite0", 1280))
        abandoned = rollout.run(settings, RESNET, progress=False, say=said.append)
        assert not abandoned.switched and "abandoned" in said[-1]
        state = live.read(settings)
        assert state.next is None and state.live.endpoint == RESNET


def wait_for_model(api: ApiThread, image: bytes, model: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while search(api, image)["model"] != model:
        assert time.monotonic() < deadline, f"the API still answers with another model than {model}"
        time.sleep(0.2)
