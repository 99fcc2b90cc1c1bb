"""Rolling a new archive of the same model across the model-server replicas under load, with no
failed request (slow tier: real TorchServe behind the gate, a real API process, the real
OpenSearch node, Locust at a fixed rate).

Two replicas serve efficientnet_lite0 archive 1.0; archive 2.0 (the same model packed again, as
`lookalike mar --archive-version 2.0` makes it) replaces them one at a time, a new one started
before an old one drains (what a Deployment's maxSurge 1 / maxUnavailable 0 does). Every search
answer names the archive that embedded its query: before the roll only 1.0, after it only 2.0
(reports/operations/rolling.json)."""

from __future__ import annotations

import uuid

import pytest

from lookalike import stack
from lookalike.ports import free_port
from lookalike.serving import archive
from tests.backends import drop_indices, opensearch_settings
from tests.operations.conftest import ONE_WORKER
from tests.operations.harness import Api, Load, ModelServer

pytestmark = pytest.mark.slow
LITE = "efficientnet_lite0"


def test_a_new_archive_rolls_across_the_replicas_under_load_failing_nothing(ops_store, photos, plain_opensearch_url,
                                                                          tmp_path):  # fmt: skip
    new_store = tmp_path / "store-2.0"
    archive.build(LITE, new_store, version="2.0", overrides=ONE_WORKER)
    ports = [free_port(), free_port(), free_port()]  # the client's three addresses: two in use, one for the surge
    old = [ModelServer(ops_store, tmp_path / f"old-{i}", port=ports[i]) for i in range(2)]
    alias = f"t-ops-{uuid.uuid4().hex[:8]}"
    settings = opensearch_settings(plain_opensearch_url, alias, model=LITE, thumb_dir=tmp_path / "thumbs",
                                   home=tmp_path, ts_url=",".join(f"http://127.0.0.1:{p}" for p in ports))  # fmt: skip
    running, api, load = list(old), None, None
    try:
        for replica in old:
            replica.wait_ready()
        stack.ingest(settings.replace(ts_url=old[0].url),
                     stack.photo_items(photos, tmp_path / "photos", "subjects", named=True))  # fmt: skip
        api = Api(settings, free_port(), tmp_path / "api.log").wait_ready()
        load = Load(api.url, tmp_path)
        load.wait_rows(5)
        load.steady("before (2 x archive 1.0)", 20)
        # slot 2 takes the surge, then slot 0's and slot 1's old replicas go, each after a new one is ready
        for step, (slot, leaving) in enumerate(((2, old[0]), (0, old[1]))):
            with load.phase(f"step {step + 1}: 2.0 up, a 1.0 drains"):
                new = ModelServer(new_store, tmp_path / f"new-{step}", port=ports[slot]).wait_ready()
                running.append(new)
                assert leaving.drain() == 0
            load.steady(f"after step {step + 1}", 15)
        load.stop()
        doc = load.report("rolling")
    finally:
        if load is not None:
            load.stop()
        for process in [*running, *([api] if api else [])]:
            process.kill()
        drop_indices(plain_opensearch_url, alias)
    phases = doc["phases"]
    assert doc["failed"] == 0, doc["failures"]
    assert phases[0]["archives"] == [f"{LITE}/1.0"]
    assert f"{LITE}/2.0" in phases[1]["archives"] or f"{LITE}/2.0" in phases[2]["archives"]
    assert phases[-1]["archives"] == [f"{LITE}/2.0"]  # every answer after the roll: the new archive
    assert all(phase["requests"] > 0 for phase in phases)
