"""The two images, built and run for real (slow tier; minutes: the model server's image carries torch).

`lookalike image` builds both with podman (runc, on a base made here with debootstrap: no registry is
reachable). Then the model server's container (TorchServe on loopback behind the gate) and the API's
container run on the host's network, as DESIGN.md says containers run here: the demo photos are
ingested through them and searched by image; bad input gets its 4xx through both; the probes and the
autoscaling gauges answer; SIGTERM drains (not ready at once, still serving, exit 0). Then a second
API container searches the local OpenSearch node instead of its embedded index."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lookalike.containers import engine, images
from lookalike.ports import free_port
from tests.backends import drop_indices

pytestmark = pytest.mark.slow
TOKEN, KEY = "model-server-key", "api-write-key"


@pytest.fixture(scope="module")
def built() -> dict[str, str]:
    """Both images, built now (podman's layer cache makes an unchanged rebuild quick)."""
    assert images.main() == 0
    return {name: image.tag for name, image in images.IMAGES.items()}


class Container:
    def __init__(self, tag: str, env: dict[str, str], volume: Path | None = None) -> None:
        self.name = f"lookalike-test-{uuid.uuid4().hex[:8]}"
        args = ["run", "-d", "--name", self.name, "--network", "host"]
        args += [item for key, value in env.items() for item in ("-e", f"{key}={value}")]
        if volume is not None:
            volume.chmod(0o777)  # the image's user (uid 10001) writes its index there
            args += ["-v", f"{volume}:/var/lib/lookalike"]
        engine.run([*args, tag], capture=True)

    def logs(self) -> str:
        done = engine.run(["logs", "--tail", "60", self.name], check=False, capture=True)
        return done.stdout + done.stderr

    def signal(self, name: str) -> None:
        engine.run(["kill", "--signal", name, self.name], capture=True)

    def exit_code(self, timeout: float = 90) -> int:
        done = engine.run(["wait", self.name], capture=True, timeout=timeout)
        return int(done.stdout.strip().splitlines()[-1])

    def remove(self) -> None:
        engine.run(["rm", "-f", "-t", "0", self.name], check=False, capture=True)


def wait_ready(url: str, container: Container, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    pytest.fail(f"{url} not ready in {timeout:.0f} s; the container's log:\n{container.logs()}")


@pytest.fixture(scope="module")
def model_server(built) -> Iterator[tuple[str, Container]]:
    port = free_port()
    env = {"LOOKALIKE_GATE_HOST": "127.0.0.1", "LOOKALIKE_GATE_PORT": str(port), "LOOKALIKE_TS_TOKEN": TOKEN}
    container = Container(built["model-server"], env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, container)
        yield url, container
    finally:
        container.remove()


def start_api(tag: str, model_url: str, volume: Path, **env: str) -> tuple[str, Container]:
    port = free_port()
    container = Container(tag, {"LOOKALIKE_API_HOST": "127.0.0.1", "LOOKALIKE_API_PORT": str(port),
                                "LOOKALIKE_TS_URL": model_url, "LOOKALIKE_TS_TOKEN": TOKEN, "LOOKALIKE_API_KEY": KEY,
                                "LOOKALIKE_DRAIN_GRACE": "3", **env}, volume)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, container, timeout=120)
    except BaseException:
        container.remove()
        raise
    return url, container


def ingest(api: str, photos: dict[str, bytes]) -> None:
    with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {KEY}"}) as client:
        for name, data in photos.items():
            answer = client.put(f"{api}/images/{name}", files={"image": (name, data)}, data={"category": "demo"})
            assert answer.status_code == 201, answer.text


def search(api: str, image: bytes) -> httpx.Response:
    return httpx.post(f"{api}/search", params={"k": 3}, content=image, timeout=120,
                      headers={"Content-Type": "application/octet-stream"})  # fmt: skip


def test_both_images_serve_the_demo_photos_and_the_api_drains(built, model_server, photos, tmp_path):
    model_url, _ = model_server
    api, container = start_api(built["api"], model_url, tmp_path)
    try:
        ingest(api, photos)
        for name in list(photos)[:5]:
            hits = search(api, photos[name]).json()["hits"]
            assert hits[0]["id"] == name

        refused = search(api, b"this is not an image")  # through the API, and the gate, from the handler
        assert refused.status_code == 415 and "image" in refused.json()["error"]
        direct = httpx.post(f"{model_url}/predictions/efficientnet_lite0", content=b"\x00" * 64,
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)  # fmt: skip
        assert direct.status_code == 415
        unkeyed = httpx.post(f"{model_url}/predictions/efficientnet_lite0", content=photos[name], timeout=60)
        assert unkeyed.status_code == 401
        assert search(api, photos[name]).status_code == 200  # the bad input cost nobody anything

        assert httpx.get(f"{api}/live").json()["status"] == "alive"
        assert httpx.get(f"{model_url}/live").json()["status"] == "alive"
        api_page, model_page = httpx.get(f"{api}/metrics").text, httpx.get(f"{model_url}/metrics").text
        assert f"lookalike_index_documents {float(len(photos))}" in api_page
        for gauge in ("requests_in_flight", "requests_waiting", "requests_waiting_mean", "queue_ratio"):
            assert f"lookalike_api_{gauge} " in api_page and f"lookalike_model_{gauge} " in model_page
        assert "lookalike_model_capacity 16" in model_page and "ts_inference_requests_total{" in model_page

        # SIGTERM: not ready at once, still answering searches through the grace, then exit 0
        container.signal("TERM")
        time.sleep(0.5)
        ready = httpx.get(f"{api}/ready", timeout=5)
        assert ready.status_code == 503 and "draining" in ready.json()["problems"]
        assert search(api, photos[name]).status_code == 200
        assert container.exit_code() == 0
    finally:
        container.remove()


def test_the_api_image_on_the_local_opensearch_node(built, model_server, photos, plain_opensearch_url, tmp_path):
    model_url, _ = model_server
    alias = f"containers-{uuid.uuid4().hex[:8]}"
    api, container = start_api(built["api"], model_url, tmp_path, LOOKALIKE_OPENSEARCH_URL=plain_opensearch_url,
                               LOOKALIKE_ALIAS=alias)  # fmt: skip
    try:
        some = dict(list(photos.items())[:6])
        ingest(api, some)
        for name, data in some.items():
            assert search(api, data).json()["hits"][0]["id"] == name
        assert httpx.get(f"{api}/healthz").json()["index"]["backend"] == "opensearch"
    finally:
        container.remove()
        drop_indices(plain_opensearch_url, alias)


def test_the_model_server_drains_on_sigterm(model_server, photos):
    """Last: it stops the module's model server."""
    model_url, container = model_server
    key = {"Authorization": f"Bearer {TOKEN}"}
    container.signal("TERM")
    time.sleep(0.5)
    assert httpx.get(f"{model_url}/ready", timeout=5).json()["problems"] == ["draining"]
    answer = httpx.post(f"{model_url}/predictions/efficientnet_lite0", content=next(iter(photos.values())),
                        headers=key, timeout=60)  # fmt: skip
    assert answer.status_code == 200  # still served during the grace
    assert container.exit_code(timeout=120) == 0
