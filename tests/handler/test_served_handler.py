"""The handler inside a real TorchServe: inputs, refusals, batches, relevance, the closed doors.

Every test here talks HTTP to a TorchServe started by the `server` fixture (conftest.py).
"""

from __future__ import annotations

import base64
import io
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import torch
from lookalike_handler.decode import decode_image
from lookalike_handler.embedder import Embedder
from lookalike_handler.precision import resolve_precision
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.wire import decode_vector
from PIL import ImageOps

from lookalike.errors import ModelServerAuth
from lookalike.serving.client import ModelClient
from lookalike.serving.torchserve import read_properties
from lookalike.serving.weights import resolve
from lookalike.settings import Settings
from tests.conftest import AUTO_MODEL, BATCH_MODEL, INT8_MODEL
from tests.corpus import bad_inputs

LITE = "efficientnet_lite0"


def predict(server, model: str, **kwargs) -> requests.Response:
    return requests.post(f"{server.inference_url}/predictions/{model}", timeout=60, **kwargs)


def raw(server, model: str, body: bytes) -> requests.Response:
    return predict(server, model, data=body, headers={"Content-Type": "application/octet-stream"})


def test_raw_multipart_and_base64_json_give_the_same_vector(server, coffee):
    answers = [
        raw(server, LITE, coffee),
        predict(server, LITE, data=coffee, headers={"Content-Type": "image/jpeg"}),
        predict(server, LITE, files={"image": ("coffee.jpg", coffee, "image/jpeg")}),
        predict(server, LITE, json={"image": base64.b64encode(coffee).decode()}),
    ]
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("application/json")
    docs = [response.json() for response in answers]
    assert {(doc["model"], doc["dimension"]) for doc in docs} == {(LITE, 1280)}
    vectors = [decode_vector(doc) for doc in docs]
    for vector in vectors[1:]:
        assert np.allclose(vector, vectors[0], atol=1e-6)
    assert len(answers[0].content) < 7000  # 1280 float32 as base64, not a 20 KB indented list


def test_list_encoding_on_request(server, coffee):
    by_header = predict(
        server, LITE, data=coffee, headers={"Content-Type": "image/jpeg", "X-Lookalike-Encoding": "list"}
    ).json()
    by_form = predict(server, LITE, files={"image": coffee}, data={"encoding": "list"}).json()
    for doc in (by_header, by_form):
        assert doc["encoding"] == "list" and len(doc["embedding"]) == 1280
    assert np.allclose(decode_vector(by_header), decode_vector(raw(server, LITE, coffee).json()), atol=1e-6)


def test_served_vectors_equal_the_in_process_pipeline(server, photos):
    embedder = Embedder.load(HandlerSettings(backbone=LITE), str(resolve(LITE)))
    names = ["coffee", "astronaut", "flower"]
    local = embedder.embed_images([decode_image(photos[name]) for name in names]).numpy()
    served = np.stack([decode_vector(raw(server, LITE, photos[name]).json()) for name in names])
    assert np.allclose(local, served, atol=1e-5)


def test_random_resnet50_serves_2048_d_unit_vectors(server, coffee):
    doc = raw(server, "resnet50-random", coffee).json()
    vector = decode_vector(doc)
    assert doc["model"] == "resnet50" and vector.shape == (2048,)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-5


def test_an_int8_archive_serves_vectors_within_its_bound_of_fp32(server, store, photos, coffee):
    """resnet50 at int8 (random weights, quantized and checked by `lookalike mar --precision int8`)
    in a real worker: its vectors are fp32's within the bound (per image cosine >= 0.99) - fp32
    computed here, in-process, from the same seeded weights - and bad input still gets its 4xx."""
    import json
    import zipfile

    with zipfile.ZipFile(store / f"{INT8_MODEL}.mar") as mar:
        figures = json.loads(mar.read("int8.json"))
    assert figures["random_weights"] and figures["cosine_min"] >= 0.99
    fp32 = Embedder.load(HandlerSettings(backbone="resnet50", precision="fp32", weights="random"), None, "cpu")
    names = ["coffee", "astronaut", "flower", "chelsea"]
    local = fp32.embed_bytes([photos[name] for name in names]).numpy()
    served = []
    for name in names:
        doc = raw(server, INT8_MODEL, photos[name]).json()
        assert doc["model"] == "resnet50" and doc["dimension"] == 2048 and doc["precision"] == "int8"
        served.append(decode_vector(doc))
    assert (np.sum(local * np.stack(served), axis=1) >= 0.99).all()
    assert raw(server, INT8_MODEL, b"not an image").status_code == 415
    assert raw(server, INT8_MODEL, coffee).status_code == 200


def test_precision_auto_keeps_the_default_when_the_int8_trunk_missed_the_bound(server, store, photos):
    """`lookalike mar` at precision auto tried an int8 trunk. With random weights every vector is
    alike, so int8's small errors reorder neighbours (top-10 overlap 0.89 < 0.95): the bound is
    missed, the record says so, no trunk is packed, and the worker serves the default and says which."""
    import json
    import zipfile

    with zipfile.ZipFile(store / f"{AUTO_MODEL}.mar") as mar:
        names = set(mar.namelist())
        record = json.loads(mar.read("int8.json"))
    assert record["random_weights"] and not record["bound_met"] and not record["chosen"]
    assert any("top-10 overlap" in miss for miss in record["misses"]) and record["race"] == {}
    assert "int8.pt" not in names  # a trunk that is not chosen is not shipped
    doc = raw(server, AUTO_MODEL, photos["coffee"]).json()
    assert doc["precision"] == resolve_precision("auto", torch.device("cpu")) != "int8"
    assert doc["archive"] == f"{AUTO_MODEL}/1.0"  # which archive answered: name and version from its manifest


def test_each_bad_input_gets_its_4xx_and_the_worker_keeps_serving(server, coffee):
    for name, body, status, words in bad_inputs(coffee):
        response = raw(server, LITE, body)
        assert response.status_code == status, (name, response.status_code, response.text)
        doc = response.json()
        assert doc["status"] == status and words.lower() in doc["error"].lower(), (name, doc)
        assert raw(server, LITE, coffee).status_code == 200, f"worker stopped serving after {name}"


def test_payload_errors_are_400s_with_advice(server, coffee):
    response = predict(server, LITE, files={"first": coffee, "second": coffee})
    assert response.status_code == 400 and "'image'" in response.json()["error"]
    response = predict(server, LITE, data=b'{"image": 12}', headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "base64" in response.json()["error"]


def test_one_bad_image_in_a_batch_fails_alone(server, photos):
    """4 concurrent requests to a model with batchSize 4 share one batch; only the bad ones fail."""
    bodies = [photos["coffee"], b"<html>oops</html>", photos["rocket"], photos["coffee"][:500]]
    with ThreadPoolExecutor(len(bodies)) as pool:
        responses = list(pool.map(lambda body: raw(server, BATCH_MODEL, body), bodies))
    assert [response.status_code for response in responses] == [200, 415, 200, 400]
    assert {response.headers.get("X-Lookalike-Batch") for response in responses} == {"4"}
    good = [decode_vector(responses[i].json()) for i in (0, 2)]
    assert np.allclose(good[0], decode_vector(raw(server, LITE, photos["coffee"]).json()), atol=1e-5)
    assert float(good[0] @ good[1]) < 0.95  # different photos, different vectors


def _crop_and_flip(data: bytes) -> bytes:
    img = decode_image(data)
    w, h = img.size
    img = ImageOps.mirror(img.crop((int(w * 0.12), int(h * 0.1), int(w * 0.9), int(h * 0.88))))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def test_lite0_ranks_a_crop_of_a_photo_nearest_to_that_photo(server, photos, interiors):
    client = ModelClient(server.inference_url, LITE)
    gallery = {**photos, **interiors}
    names = list(gallery)
    xb = np.stack([client.embed(gallery[name]) for name in names])
    misses = []
    for name in photos:
        xq = client.embed(_crop_and_flip(photos[name]))
        nearest = names[int(np.argmax(xb @ xq))]
        if nearest != name:
            misses.append((name, nearest))
    assert not misses, misses


def test_model_registration_and_remote_binding_are_closed(server):
    register = requests.post(
        f"{server.management_url}/models", params={"url": "https://example.com/evil.mar"}, timeout=10
    )
    assert register.status_code in (403, 405), register.text
    listing = requests.get(f"{server.management_url}/models", timeout=10)
    assert listing.status_code == 200  # read-only management stays usable on loopback
    config = read_properties(server.run_dir / "config.properties")
    for key in ("inference_address", "management_address", "metrics_address"):
        assert config[key].startswith("http://127.0.0.1:"), key
    assert config["grpc_inference_address"] == config["grpc_management_address"] == "127.0.0.1"
    assert config["enable_model_api"] == "false"
    assert config["allowed_urls"] == f"^file://\\Q{server.store.resolve()}\\E/[^/]+\\.mar$"


def test_prometheus_metrics_are_exposed(server, coffee):
    raw(server, LITE, coffee)
    text = requests.get(f"{server.metrics_url}/metrics", timeout=10).text
    assert "ts_inference_requests_total" in text
    for stage in ("LookalikeDecodeMs", "LookalikePreprocessMs", "LookalikeInferenceMs", "LookalikeImages"):
        assert re.search(rf"^{stage}\{{.*ModelName=\"{LITE}\".*\}} [0-9.]+$", text, re.M), stage  # per stage


def test_logs_stay_quiet_per_request(server, coffee):
    logs = server.run_dir / "logs"

    def size() -> int:
        return sum(path.stat().st_size for path in logs.glob("*.log"))

    before = size()
    for _ in range(20):
        assert raw(server, LITE, coffee).status_code == 200
    assert (size() - before) / 20 < 400  # bytes per request; the stock config writes ~3 KB


def test_token_auth_requires_the_bearer_key(token_server, coffee):
    url = f"{token_server.inference_url}/predictions/{LITE}"
    response = requests.post(url, data=coffee, headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert response.status_code == 400 and response.json()["type"] == "InvalidKeyException"
    key = token_server.keys()["inference"]
    assert ModelClient(token_server.inference_url, LITE, token=key).embed(coffee).shape == (1280,)
    with pytest.raises(ModelServerAuth) as caught:
        ModelClient(token_server.inference_url, LITE, token="wrong").embed(coffee)
    assert caught.value.upstream == 401 and "bearer key" in caught.value.reason


def test_client_reads_the_key_file_from_the_environment(token_server, coffee, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_TS_KEY_FILE", str(token_server.key_file))
    monkeypatch.delenv("LOOKALIKE_TS_TOKEN", raising=False)
    settings = Settings.from_env(ts_url=token_server.inference_url, model=LITE)
    assert ModelClient.from_settings(settings).embed(coffee).shape == (1280,)
