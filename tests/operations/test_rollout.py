"""A blue/green rollout of a model whose vectors live in another space, and its rollback, under
load with no failed request (slow tier: real TorchServe behind the gate serving
efficientnet_lite0 (1280-d) and resnet50-random (2048-d), a real API process, the real OpenSearch
node, Locust at a fixed rate).

`lookalike admin rollout --model resnet50-random` builds the new index from the live one's sources
while Locust searches and an image is PUT through the API (it must reach both indexes), checks it,
and switches; every answer names its archive, so the timeline shows which model answered when:
lite0 before, resnet50 after, lite0 again after the rollback (reports/operations/rollout.json)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import httpx
import pytest

from lookalike import stack
from lookalike.api.process import settings_environment
from lookalike.index import live
from lookalike.ports import free_port
from tests.backends import drop_indices, opensearch_settings
from tests.operations.harness import Api, Load, ModelServer

pytestmark = pytest.mark.slow
LITE, RESNET = "efficientnet_lite0", "resnet50-random"


def rollout(settings, endpoint: str) -> str:
    """`lookalike admin rollout --model ENDPOINT` as an operator runs it; its output."""
    env = {**os.environ, **settings_environment(settings)}
    done = subprocess.run([sys.executable, "-m", "lookalike", "admin", "rollout", "--model", endpoint,
                           "--concurrency", "2"], env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_blue_green_rollout_and_rollback_under_load_fail_nothing(ops_store, photos, plain_opensearch_url, tmp_path):
    alias = f"t-ops-{uuid.uuid4().hex[:8]}"
    server = ModelServer(ops_store, tmp_path / "ms", models=f"{LITE},{RESNET}")
    settings = opensearch_settings(plain_opensearch_url, alias, ts_url=server.url, model=LITE, api_key="sesame",
                                   thumb_dir=tmp_path / "thumbs", home=tmp_path)  # fmt: skip
    api = load = None
    late = list(photos.values())[-1]
    try:
        server.wait_ready()
        subjects = dict(list(photos.items())[:-1])
        stack.ingest(settings, stack.photo_items(subjects, tmp_path / "photos", "subjects", named=True))
        api = Api(settings, free_port(), tmp_path / "api.log").wait_ready()
        load = Load(api.url, tmp_path)
        load.wait_rows(5)
        load.steady("before (lite0)", 15)

        with load.phase("rollout to resnet50 (build, check, switch)"):
            result: dict = {}
            thread = threading.Thread(target=lambda: result.update(out=rollout(settings, RESNET)))
            thread.start()
            deadline_put(settings, api.url, late, tmp_path / "late.jpg", thread)
            thread.join()
        assert "live: resnet50-random (resnet50, 2048-d" in result["out"], result["out"]
        state = live.read(settings)
        assert state.live.endpoint == RESNET and state.next is None
        connected = stack.connect(settings)
        try:  # the image PUT during the build reached the new index
            assert connected.info.model == "resnet50" and connected.index.existing(["late"]) == {"late"}
            assert connected.index.count() == len(subjects) + 1
        finally:
            connected.close()
        load.steady("after the switch (resnet50)", 15)

        with load.phase("rollback to lite0"):
            out = rollout(settings, LITE)
        assert "live: efficientnet_lite0 (efficientnet_lite0, 1280-d" in out, out
        load.steady("after the rollback (lite0)", 15)
        load.stop()
        doc = load.report("rollout")
    finally:
        if load is not None:
            load.stop()
        for process in (api, server):
            if process is not None:
                process.kill()
        drop_indices(plain_opensearch_url, alias)
    phases = doc["phases"]
    assert doc["failed"] == 0, doc["failures"]
    assert phases[0]["archives"] == [f"{LITE}/1.0"]
    assert phases[2]["archives"] == [f"{RESNET}/1.0"]  # after the switch: only the new model answers
    assert phases[4]["archives"] == [f"{LITE}/1.0"]
    assert all(phase["requests"] > 0 for phase in phases)


def deadline_put(settings, url: str, image: bytes, path, building: threading.Thread) -> None:
    """Once the rollout records its next index, PUT an image through the API (a write during the
    build), with its source (where a later rollout reads it again: the rollback)."""
    import time

    deadline = time.monotonic() + 120
    while live.read(settings).next is None:
        assert building.is_alive() and time.monotonic() < deadline, "the rollout never started building"
        time.sleep(0.2)
    time.sleep(1.5)  # the API reads the record again within a second
    path.write_bytes(image)
    answer = httpx.put(f"{url}/images/late", content=image, params={"source": str(path)},
                       headers={"Authorization": "Bearer sesame"}, timeout=60)  # fmt: skip
    assert answer.status_code == 201, answer.text
