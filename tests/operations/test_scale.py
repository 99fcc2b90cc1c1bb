"""Scaling and restarting under load, with no failed request (slow tier: real TorchServe behind
the gate, real API processes, the real OpenSearch node, Locust at a fixed rate).

Model-server replicas go 1 -> 3 -> 1 while the site searches: the API's client holds all three
addresses (LOOKALIKE_TS_URL); a replica not started yet refuses connections, a starting one says
so, a draining one says so and then refuses, and the client sends each request where it is taken.
Then each of two API processes behind the balancer is restarted in turn (SIGTERM: drain, exit 0;
started again at its address). The report gives requests, failures and p95 per phase against the
p95 before (reports/operations/scale.json)."""

from __future__ import annotations

import uuid

import pytest

from lookalike import stack
from lookalike.ports import free_port
from tests.backends import drop_indices, opensearch_settings
from tests.operations.harness import Api, Load, ModelServer, balanced

pytestmark = pytest.mark.slow
LITE = "efficientnet_lite0"


def test_model_servers_1_3_1_and_api_restarts_under_load_fail_nothing(ops_store, photos, plain_opensearch_url,
                                                                     tmp_path):  # fmt: skip
    first = ModelServer(ops_store, tmp_path / "ms-a")
    ports = [free_port(), free_port()]  # the replicas scaling adds; the API's client knows them from the start
    urls = [first.url] + [f"http://127.0.0.1:{port}" for port in ports]
    alias = f"t-ops-{uuid.uuid4().hex[:8]}"
    settings = opensearch_settings(plain_opensearch_url, alias, ts_url=",".join(urls), model=LITE,
                                   thumb_dir=tmp_path / "thumbs", home=tmp_path)  # fmt: skip
    apis: list[Api] = []
    load = None
    started: list[ModelServer] = [first]
    try:
        first.wait_ready()
        stack.ingest(settings.replace(ts_url=first.url), stack.photo_items(photos, tmp_path / "photos", "subjects",
                                                                           named=True))  # fmt: skip
        apis = [Api(settings, free_port(), tmp_path / f"api-{i}.log") for i in range(2)]
        for api in apis:
            api.wait_ready()
        with balanced([api.url for api in apis]) as (url, balancer):
            load = Load(url, tmp_path)
            load.wait_rows(5)
            load.steady("before (1 model server, 2 APIs)", 20)

            with load.phase("model servers 1 -> 3"):
                more = [ModelServer(ops_store, tmp_path / f"ms-{i}", port=port) for i, port in enumerate(ports)]
                started += more
                for replica in more:
                    replica.wait_ready()
            load.steady("3 model servers", 20)
            assert all(replica.served() > 0 for replica in more), "the new replicas took no searches"

            with load.phase("model servers 3 -> 1 (drain)"):
                for replica in more:
                    assert replica.drain() == 0
            load.steady("1 model server again", 10)

            for i in range(len(apis)):
                with load.phase(f"API {i + 1} restarted"):
                    apis[i] = apis[i].restart()
                load.steady(f"after API {i + 1} restart", 10)
            load.stop()
            doc = load.report("scale")
            assert balancer.pool.urls == [api.url for api in apis]
    finally:
        if load is not None:
            load.stop()
        for process in [*apis, *started]:
            process.kill()
        drop_indices(plain_opensearch_url, alias)
    assert doc["requests"] > 100
    assert all(phase["requests"] > 0 for phase in doc["phases"])
    assert doc["failed"] == 0, doc["failures"]
