"""The catalogue API a site syncs with, its keys, CORS, error shape and metrics (stand-in model
server, each index backend)."""

from __future__ import annotations

import io

import pytest
import requests
from PIL import Image

from lookalike import search as search_module
from tests.api.conftest import WRITE_KEY

AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}


def search(api, image: bytes, **params) -> list[dict]:
    response = requests.post(f"{api.url}/search", params=params, data=image,
                             headers={"Content-Type": "image/jpeg"}, timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()["hits"]


def assert_error(response: requests.Response, status: int, *words: str) -> None:
    """Every error has one shape: {"error": reason, "status": code}."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "status"} and body["status"] == status
    assert all(word in body["error"] for word in words), body["error"]


def test_image_metadata_categories_and_per_category_search(api, photos):
    with api() as running:
        meta = requests.get(f"{running.url}/images/coffee", timeout=30).json()
        assert meta["id"] == "coffee" and meta["category"] == "subjects" and meta["tags"] == ["sample"]
        assert meta["source"].endswith("coffee.jpg") and meta["width"] > 0
        assert_error(requests.get(f"{running.url}/images/no-such-id", timeout=30), 404, "no-such-id")
        categories = requests.get(f"{running.url}/categories", timeout=30).json()["categories"]
        assert categories == [{"name": "interiors", "count": 12}, {"name": "subjects", "count": len(photos)}]
        grouped = requests.post(f"{running.url}/search", params={"per_category": 2}, data=photos["coffee"],
                                headers={"Content-Type": "image/jpeg"}, timeout=60).json()["per_category"]  # fmt: skip
        assert set(grouped) == {"interiors", "subjects"} and grouped["subjects"][0]["id"] == "coffee"
        assert all(len(hits) == 2 and {hit["category"] for hit in hits} == {name} for name, hits in grouped.items())


def test_thumbnails_are_small_jpegs_of_the_indexed_source_only(api, catalogue):
    with api() as running:
        response = requests.get(f"{running.url}/images/chelsea/thumbnail", timeout=30)
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        thumb = Image.open(io.BytesIO(response.content))
        assert thumb.format == "JPEG" and max(thumb.size) <= catalogue.thumb_size
        assert len(list(catalogue.thumb_dir.glob("*.jpg"))) == 1  # made once, cached by a hash of the id
        for attempt in ("..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..", "%2E%2E",
                        "/etc/passwd", "coffee%00.jpg"):  # fmt: skip
            answer = requests.get(f"{running.url}/images/{attempt}/thumbnail", timeout=30)
            assert answer.status_code == 404 and "root:" not in answer.text, attempt
            assert set(answer.json()) == {"error", "status"}
        assert_error(requests.get(f"{running.url}/images/nobody/thumbnail", timeout=30), 404, "nobody")


def test_writes_are_refused_until_a_key_is_set(api, photos):
    with api() as running:  # no LOOKALIKE_API_KEY
        put = requests.put(f"{running.url}/images/new", files={"image": photos["rocket"]}, timeout=30)
        assert_error(put, 403, "LOOKALIKE_API_KEY")
        assert_error(requests.delete(f"{running.url}/images/coffee", timeout=30), 403, "LOOKALIKE_API_KEY")
    with api(api_key=WRITE_KEY) as running:
        put = requests.put(f"{running.url}/images/new", files={"image": photos["rocket"]}, timeout=30)
        assert_error(put, 401, "Bearer")
        assert put.headers["www-authenticate"] == "Bearer"
        wrong = requests.delete(f"{running.url}/images/coffee", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert_error(wrong, 401, "wrong API key")
        assert requests.get(f"{running.url}/images/coffee", timeout=30).status_code == 200  # untouched


def test_upsert_replaces_and_delete_removes(api, photos):
    with api(api_key=WRITE_KEY) as running:
        url = f"{running.url}/images/sku-1"
        first = requests.put(url, files={"image": ("a.jpg", photos["rocket"], "image/jpeg")},
                             data={"category": "toys", "tags": "new,sale", "source": "https://shop.example/sku-1"},
                             headers=AUTH, timeout=60)  # fmt: skip
        assert first.status_code == 201 and first.json()["created"] is True
        assert search(running, photos["rocket"], k=1)[0]["id"] in ("sku-1", "rocket")
        assert [hit["id"] for hit in search(running, photos["rocket"], category="toys")] == ["sku-1"]
        meta = requests.get(url, timeout=30).json()
        assert meta["tags"] == ["new", "sale"] and meta["source"] == "https://shop.example/sku-1"
        assert requests.get(f"{url}/thumbnail", timeout=30).headers["content-type"] == "image/jpeg"

        again = requests.put(url, files={"image": photos["astronaut"]}, data={"category": "toys"}, headers=AUTH,
                             timeout=60)  # fmt: skip
        assert again.status_code == 200 and again.json()["created"] is False
        toys = search(running, photos["astronaut"], category="toys")
        assert [hit["id"] for hit in toys] == ["sku-1"] and toys[0]["similarity"] > 0.999  # the new image's vector
        assert search(running, photos["rocket"], category="toys")[0]["similarity"] < 0.999  # not the old one

        assert requests.delete(url, headers=AUTH, timeout=30).status_code == 204
        assert search(running, photos["astronaut"], category="toys") == []
        assert "sku-1" not in [hit["id"] for hit in search(running, photos["astronaut"], k=50)]
        assert_error(requests.get(url, timeout=30), 404)
        assert_error(requests.get(f"{url}/thumbnail", timeout=30), 404)
        assert_error(requests.delete(url, headers=AUTH, timeout=30), 404, "sku-1")


def test_upload_errors_on_put(api, photos):
    with api(api_key=WRITE_KEY, max_image_bytes=50_000) as running:
        big = requests.put(f"{running.url}/images/big", files={"image": photos["coffee"]}, headers=AUTH, timeout=60)
        assert_error(big, 413, "limit")
        text = requests.put(f"{running.url}/images/txt", files={"image": ("a.txt", b"hello there\n", "text/plain")},
                            headers=AUTH, timeout=60)  # fmt: skip
        assert_error(text, 415, "text")
        assert_error(requests.get(f"{running.url}/images/txt", timeout=30), 404)  # nothing written


def test_a_read_key_guards_reads_but_not_health(api, photos):
    with api(api_key=WRITE_KEY, api_read_key="read-key") as running:
        assert_error(requests.post(f"{running.url}/search", data=photos["coffee"], timeout=60), 401, "read key")
        assert_error(requests.get(f"{running.url}/categories", timeout=30), 401)
        for key in ("read-key", WRITE_KEY):
            ok = requests.get(f"{running.url}/images/coffee", headers={"Authorization": f"Bearer {key}"}, timeout=30)
            assert ok.status_code == 200
        assert requests.get(f"{running.url}/healthz", timeout=30).status_code == 200


def test_validation_errors_have_the_same_shape(api, photos):
    with api() as running:
        assert_error(requests.post(f"{running.url}/search?k=0", data=photos["coffee"], timeout=60), 422, "k")
        assert_error(requests.post(f"{running.url}/search?min_similarity=3", data=b"x", timeout=60), 422, "min")
        assert_error(requests.get(f"{running.url}/no/such/route", timeout=30), 404)


@pytest.mark.parametrize("origins", ["", "https://shop.example"])
def test_cors_is_closed_unless_origins_are_configured(api, origins):
    with api(cors_origins=origins) as running:
        preflight = requests.options(f"{running.url}/search", timeout=30, headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})  # fmt: skip
        allowed = preflight.headers.get("access-control-allow-origin")
        assert allowed == ("https://shop.example" if origins else None)


def test_metrics_count_requests_and_time_each_stage_apart(api, photos, catalogue):
    """embed, the query's features, the k-NN query and verification are timed apart; other index
    calls as index."""
    with api() as running:
        for _ in range(3):
            search(running, photos["coffee"], k=3, verify="false")
        search(running, photos["coffee"], k=3)  # verified by default
        requests.get(f"{running.url}/images/unknown", timeout=30)
        text = requests.get(f"{running.url}/metrics", timeout=30).text
    assert 'lookalike_api_requests_total{method="POST",route="/search",status="200"} 4.0' in text
    assert 'lookalike_api_requests_total{method="GET",route="/images/{doc_id}",status="404"} 1.0' in text
    assert 'lookalike_api_stage_seconds_count{stage="embed"} 4.0' in text
    assert 'lookalike_api_stage_seconds_count{stage="knn"} 4.0' in text
    assert 'lookalike_api_stage_seconds_count{stage="extract"} 1.0' in text
    assert 'lookalike_api_stage_seconds_count{stage="verify"} 1.0' in text
    assert 'lookalike_api_stage_seconds_count{stage="index"} 1.0' in text
    assert 'lookalike_api_request_seconds_bucket{le="0.25",route="/search"}' in text
    assert f"lookalike_index_documents {float(len(photos) + 12)}" in text


def test_an_unexpected_failure_is_a_500_in_the_same_shape(api, photos, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(search_module, "by_vector", broken)
    with api() as running:
        response = requests.post(f"{running.url}/search", data=photos["coffee"], timeout=60)
        assert_error(response, 500, "internal error (RuntimeError)")
        assert requests.get(f"{running.url}/images/coffee", timeout=30).status_code == 200  # still serving


def test_a_method_a_path_lacks_is_a_405_naming_every_method_it_has(api):
    with api() as running:
        patched = requests.patch(f"{running.url}/images/coffee", timeout=30)
        assert_error(patched, 405, "Method Not Allowed")
        assert patched.headers["allow"] == "DELETE, GET, PUT"  # three routes share the path
        assert requests.get(f"{running.url}/search", timeout=30).headers["allow"] == "POST"


def test_search_verifies_by_default_and_puts_the_verified_source_first_with_its_verdict(api, photos):
    """A heavy crop of a catalogue photo: verified (unasked) as part of it, with the box where it was
    cut; verify=false answers in cosine order without verdicts."""
    from PIL import Image

    img = Image.open(io.BytesIO(photos["chelsea"])).convert("RGB")  # 451 x 300
    buffer = io.BytesIO()
    img.crop((200, 60, 360, 220)).save(buffer, format="JPEG", quality=90)
    with api() as running:
        found = requests.post(f"{running.url}/search", params={"k": 3}, timeout=120,
                              files={"image": ("crop.jpg", buffer.getvalue(), "image/jpeg")})  # fmt: skip
        assert found.status_code == 200, found.text
        hits = found.json()["hits"]
        assert hits[0]["id"] == "chelsea" and hits[0]["verdict"] == "part", hits[0]
        assert abs(hits[0]["box"][0] - 200 / 451) < 0.03 and hits[0]["verification"]["inliers"] >= 15
        assert all("verdict" in hit and hit["verification"]["reason"] for hit in hits)
        plain = requests.post(f"{running.url}/search", params={"k": 3, "verify": "false"}, timeout=60,
                              files={"image": ("crop.jpg", buffer.getvalue(), "image/jpeg")})  # fmt: skip
        assert all("verdict" not in hit for hit in plain.json()["hits"])  # opted out
