"""The API's probes apart (/live, /ready), its autoscaling gauges on /metrics, and the graceful stop.

Fast tier: the API in a thread with the stand-in model server (tests/standin.py, NOT TorchServe);
the drain of a real `python -m lookalike.api` process is in the slow tier below it (a process of its
own, its own index). The same image's drain runs in tests/deploy/test_containers.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from lookalike.api.process import settings_environment
from lookalike.ports import free_port
from lookalike.settings import Settings


def test_live_ready_and_draining(standin_api):
    service = standin_api.server.config.app.state.service
    assert httpx.get(f"{standin_api.url}/live").json() == {"status": "alive", "problems": []}
    assert httpx.get(f"{standin_api.url}/ready").json() == {"status": "ready", "problems": []}
    assert "X-Lookalike-Replica" not in httpx.get(f"{standin_api.url}/ready").headers
    service.draining = True
    try:
        ready = httpx.get(f"{standin_api.url}/ready")
        assert ready.status_code == 503 and ready.json()["problems"] == ["draining"]
        assert ready.headers["X-Lookalike-Replica"] == "draining"  # every answer says so: a balancer moves on
        assert "lookalike_api_draining 1" in httpx.get(f"{standin_api.url}/metrics").text
    finally:
        service.draining = False


def test_metrics_carry_the_autoscaling_signal(standin_api, coffee):
    answer = httpx.post(f"{standin_api.url}/search", content=coffee, timeout=60)
    assert answer.status_code == 200
    assert answer.json()["archive"] == "efficientnet_lite0/standin"  # which archive embedded the query
    page = httpx.get(f"{standin_api.url}/metrics").text
    gauges = {line.split()[0]: float(line.split()[1]) for line in page.splitlines()
              if line.startswith("lookalike_api_") and "{" not in line and not line.startswith("#")}  # fmt: skip
    assert gauges["lookalike_api_requests_in_flight"] == 0  # the scrape itself is not load
    assert gauges["lookalike_api_requests_waiting"] == 0
    assert {"lookalike_api_requests_waiting_mean", "lookalike_api_queue_ratio"} <= gauges.keys()
    assert gauges["lookalike_api_queue_ratio"] >= 0


def test_ready_is_503_when_no_model_server_answers(tmp_path):
    from lookalike.api.process import ApiThread

    settings = Settings(ts_url=f"http://127.0.0.1:{free_port()}", data_dir=tmp_path / "index", home=tmp_path)
    with ApiThread(settings) as api:
        assert httpx.get(f"{api.url}/live").status_code == 200  # alive: do not restart it ...
        ready = httpx.get(f"{api.url}/ready", timeout=30)  # ... but send nothing its way
        assert ready.status_code == 503 and ready.json()["problems"][0].startswith("model server:")


@pytest.mark.slow
def test_sigterm_drains_then_exits_zero(standin, tmp_path):
    """A real process: SIGTERM -> /ready 503 at once, requests still served for the grace, exit 0."""
    port = free_port()
    settings = Settings(ts_url=standin.inference_url, data_dir=tmp_path / "index", home=tmp_path, api_port=port,
                        drain_grace=2.0)  # fmt: skip
    env = {**os.environ, **settings_environment(settings)}
    process = subprocess.Popen([sys.executable, "-m", "lookalike.api"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "the API did not become ready"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        while (ready := httpx.get(f"{url}/ready")).status_code == 200 and time.monotonic() < signalled + 1:
            time.sleep(0.05)  # the handler runs at the process's next chance: not "at once" to the microsecond
        assert ready.json()["problems"] == ["draining"]
        assert httpx.get(f"{url}/categories").status_code == 200  # still served during the grace
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
