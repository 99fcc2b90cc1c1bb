"""Every route answers 503 naming the index when OpenSearch goes away after start-up, and recovers.

The API runs over the real node behind a fault proxy (tests/faults.py), with the stand-in model
server: first every route answers, then the proxy drops every connection (a dead node), then it
holds every request past the client's timeout (a hung node), then it forwards again.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from lookalike import stack
from lookalike.api import process
from tests.api.conftest import LITE, WRITE_KEY
from tests.backends import drop_indices, opensearch_settings
from tests.faults import FaultProxy

KEY = {"Authorization": f"Bearer {WRITE_KEY}"}


def routes(photo: bytes) -> list[tuple[str, str, dict]]:
    """(method, path, requests keyword arguments) of every route that touches the index."""
    jpeg = {"data": photo, "headers": {"Content-Type": "image/jpeg"}}
    return [
        ("POST", "/search?k=3", jpeg),
        ("POST", "/search?per_category=2", jpeg),
        ("GET", "/similar/coffee?k=3", {}),
        ("GET", "/categories", {}),
        ("GET", "/images/coffee", {}),
        ("GET", "/images/coffee/thumbnail", {}),
        ("PUT", "/images/added", {"data": photo, "headers": {"Content-Type": "image/jpeg", **KEY}}),
        ("DELETE", "/images/rocket", {"headers": KEY}),
        ("GET", "/healthz", {}),
    ]


@pytest.fixture
def behind_proxy(standin, photos, opensearch_url, tmp_path):
    """(the API's URL, the proxy between it and the node, the alias)"""
    alias = f"down-{uuid.uuid4().hex[:8]}"
    with FaultProxy(opensearch_url) as proxy:
        settings = opensearch_settings(proxy.url, alias, ts_url=standin.inference_url, model=LITE,
                                       api_key=WRITE_KEY, thumb_dir=tmp_path / "thumbs")  # fmt: skip
        chosen = {name: photos[name] for name in ("coffee", "chelsea", "rocket")}
        stack.ingest(settings, stack.photo_items(chosen, tmp_path / "photos", "subjects", named=True))
        try:  # the API gives up on a request after 1 s (and 3 more tries), so a hung node is seen fast
            with process.ApiThread(settings.replace(opensearch_timeout=1.0)) as api:
                yield api.url, proxy, alias
        finally:
            proxy.mode = "up"
            drop_indices(opensearch_url, alias)


def call(url: str, method: str, path: str, options: dict) -> requests.Response:
    return requests.request(method, url + path, timeout=60, **options)


def test_every_route_answers_503_naming_the_index_while_opensearch_is_gone(behind_proxy, photos):
    url, proxy, alias = behind_proxy
    everything = routes(photos["coffee"])
    for method, path, options in [route for route in everything if route[0] in ("GET", "POST")]:
        assert call(url, method, path, options).status_code == 200, (method, path)
    proxy.hang_seconds = 3.0  # past the client's 1 s timeout, each of its tries
    for mode, words in (("down", "OpenSearch unreachable"), ("hang", "OpenSearch timed out")):
        proxy.mode = mode
        for method, path, options in everything:
            response = call(url, method, path, options)
            assert response.status_code == 503, (mode, method, path, response.text)
            body = response.json()
            reason = body["index"] if path == "/healthz" else body["error"]
            assert words in reason and f"index {alias}" in reason, (mode, method, path, reason)
    proxy.mode = "up"
    for method, path, options in everything:  # back: every route answers again, writes included
        response = call(url, method, path, options)
        assert response.status_code in (200, 201, 204), (method, path, response.text)
