"""The search-by-image API over HTTP (uvicorn on a free port).

The fast tier runs it with the stand-in model server (tests/standin.py); the bearer-key tests
need real TorchServe's token authorisation and are marked slow."""

from __future__ import annotations

import json
import os

import requests

from lookalike import ports
from lookalike.api import process
from lookalike.settings import Settings

LITE = "efficientnet_lite0"


def post_coffee(api: process.ApiThread, photos: dict[str, bytes]) -> requests.Response:
    """POST /search with the coffee photo as the raw body."""
    return requests.post(f"{api.url}/search", data=photos["coffee"], headers={"Content-Type": "image/jpeg"}, timeout=60)


def test_search_by_multipart_and_raw_body(standin_api, photos):
    by_form = requests.post(f"{standin_api.url}/search", files={"image": ("q.jpg", photos["coffee"], "image/jpeg")},
                            params={"k": 3}, timeout=60)  # fmt: skip
    raw = requests.post(f"{standin_api.url}/search?k=3", data=photos["coffee"], headers={"Content-Type": "image/jpeg"},
                        timeout=60)  # fmt: skip
    for response in (by_form, raw):
        assert response.status_code == 200, response.text
        doc = response.json()
        assert doc["model"] == LITE and len(doc["hits"]) == 3
        assert doc["hits"][0]["id"] == "coffee" and doc["hits"][0]["similarity"] > 0.99
        assert doc["hits"][0]["distance"] < 0.05 and doc["hits"][0]["category"] == "subjects"


def test_filters_and_threshold_through_the_api(standin_api, photos):
    params = {"k": 10, "min_similarity": 0.9, "tags": "sample", "category": "subjects"}
    doc = requests.post(f"{standin_api.url}/search", params=params, data=photos["rocket"],
                        headers={"Content-Type": "image/jpeg"}, timeout=60).json()  # fmt: skip
    assert [hit["id"] for hit in doc["hits"]] == ["rocket"]
    doc = requests.post(f"{standin_api.url}/search", params={"category": "nothing"}, data=photos["rocket"],
                        headers={"Content-Type": "image/jpeg"}, timeout=60).json()  # fmt: skip
    assert doc["hits"] == []
    bad = requests.post(f"{standin_api.url}/search", params={"k": 0}, data=photos["rocket"], timeout=60)
    assert bad.status_code == 422


def test_similar_by_id_excludes_itself_verifies_and_404s_unknown_ids(standin_api):
    doc = requests.get(f"{standin_api.url}/similar/motorcycle_left", params={"k": 2}, timeout=60).json()
    assert doc["hits"][0]["id"] == "motorcycle_right"
    assert doc["hits"][0]["verdict"] == "same_scene"  # the stereo pair: judged against the stored features
    assert "motorcycle_left" not in [hit["id"] for hit in doc["hits"]]
    plain = requests.get(f"{standin_api.url}/similar/motorcycle_left", params={"k": 2, "verify": "false"}, timeout=60)
    assert [hit["id"] for hit in plain.json()["hits"]] == [hit["id"] for hit in doc["hits"]]
    assert all("verdict" not in hit for hit in plain.json()["hits"])
    missing = requests.get(f"{standin_api.url}/similar/nope", timeout=60)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


def test_upload_errors_carry_status_and_reason(standin_api, photos):
    too_big = requests.post(f"{standin_api.url}/search", data=os.urandom(1_500_000),
                            headers={"Content-Type": "application/octet-stream"}, timeout=60)  # fmt: skip
    assert too_big.status_code == 413 and "limit" in too_big.json()["error"]
    text = requests.post(f"{standin_api.url}/search", data=b"hello", headers={"Content-Type": "text/plain"}, timeout=60)
    assert text.status_code == 415 and text.json()["error"] == "body is text, not an image"
    cut = requests.post(f"{standin_api.url}/search", data=photos["coffee"][:2000],
                        headers={"Content-Type": "image/jpeg"}, timeout=60)  # fmt: skip
    assert cut.status_code == 400 and "truncated" in cut.json()["error"].lower()
    empty = requests.post(f"{standin_api.url}/search", files={"other": ("x", b"1")}, timeout=60)
    assert empty.status_code == 400 and "'image'" in empty.json()["error"]


def test_healthz_and_openapi(standin_api):
    health = requests.get(f"{standin_api.url}/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json()["model_server"] == "ok" and health.json()["index"]["count"] == 12
    assert health.json()["precision"] == "fp32"  # what the (stand-in) model server says it ran at
    spec = requests.get(f"{standin_api.url}/openapi.json", timeout=30).json()
    assert {"/search", "/similar/{doc_id}", "/healthz"} <= set(spec["paths"])
    assert requests.get(f"{standin_api.url}/docs", timeout=30).status_code == 200


def test_model_server_down_is_a_clear_503(tmp_path, photos):
    settings = Settings(ts_url=f"http://127.0.0.1:{ports.free_port()}", model=LITE, data_dir=tmp_path)
    with process.ApiThread(settings) as api:
        response = post_coffee(api, photos)
        assert response.status_code == 503 and "model server unavailable" in response.json()["error"]
        health = requests.get(f"{api.url}/healthz", timeout=30)
        assert health.status_code == 503 and health.json()["model_server"].startswith("unreachable")


def test_index_down_is_a_clear_503(standin, tmp_path, photos):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the index folder should be")
    settings = Settings(ts_url=standin.inference_url, model=LITE, data_dir=blocker)
    with process.ApiThread(settings) as api:
        response = post_coffee(api, photos)
        assert response.status_code == 503 and "cannot open the embedded index" in response.json()["error"]
        health = requests.get(f"{api.url}/healthz", timeout=30).json()
        assert health["model_server"] == "ok" and health["index"].startswith("unavailable")


def test_opensearch_down_is_a_clear_503(standin, photos):
    settings = Settings(
        ts_url=standin.inference_url, model=LITE, opensearch_url=f"http://127.0.0.1:{ports.free_port()}"
    )
    with process.ApiThread(settings) as api:
        response = post_coffee(api, photos)
        assert response.status_code == 503 and "OpenSearch unreachable" in response.json()["error"]


def test_the_api_sends_the_model_servers_bearer_key(token_server, photos, tmp_path):
    settings = Settings(ts_url=token_server.inference_url, model=LITE, data_dir=tmp_path,
                              ts_key_file=str(token_server.key_file))  # fmt: skip
    with process.ApiThread(settings) as api:
        response = post_coffee(api, photos)
        assert response.status_code == 200 and response.json()["hits"] == []
    unkeyed = Settings(ts_url=token_server.inference_url, model=LITE, data_dir=tmp_path)
    with process.ApiThread(unkeyed) as api:
        response = post_coffee(api, photos)
        assert response.status_code == 503 and "bearer key" in response.json()["error"]


def test_the_api_rereads_an_expired_key_from_the_key_file(token_server, photos, tmp_path):
    """TorchServe rotates its keys and rewrites key_file.json; the API picks up the new key on rejection."""
    real = json.loads(token_server.key_file.read_text())
    key_file = tmp_path / "key_file.json"
    key_file.write_text(json.dumps({**real, "inference": {**real["inference"], "key": "expired"}}))
    settings = Settings(ts_url=token_server.inference_url, model=LITE, data_dir=tmp_path, ts_key_file=str(key_file))
    with process.ApiThread(settings) as api:
        key_file.write_text(json.dumps(real))  # the rotation happens after the API read the old key
        response = post_coffee(api, photos)
        assert response.status_code == 200, response.text
