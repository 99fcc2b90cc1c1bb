"""The handler's batch contract with a mock TorchServe context, in-process (fast tier).

A stand-in for TorchServe's Context, not TorchServe: it records what the handler tells the
server per request. The real server proves the same contract end to end in
test_served_handler.py (slow); this one runs in a second, so a change that breaks it fails fast.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from lookalike_handler.regions import SCHEMES
from lookalike_handler.ts_handler import EmbeddingHandler
from lookalike_handler.wire import decode_regions, decode_vector


class MockMetrics:
    """Records what the handler adds to TorchServe's metrics: name -> (sum, type)."""

    def __init__(self) -> None:
        self.added: dict[str, float] = {}

    def add_time(self, name: str, value: float, idx=None, unit: str = "ms", dimensions=None, metric_type=None) -> None:
        assert unit == "ms" and str(metric_type).endswith("COUNTER"), (name, unit, metric_type)
        self.added[name] = self.added.get(name, 0.0) + value

    def add_counter(self, name: str, value: float, idx=None, dimensions=None) -> None:
        self.added[name] = self.added.get(name, 0.0) + value


class MockContext:
    def __init__(self, model_dir: str) -> None:
        self.metrics = MockMetrics()
        self.system_properties = {"model_dir": model_dir, "gpu_id": None}
        self.model_yaml_config = {"maxWorkers": 1, "handler": {"backbone": "resnet50", "weights": "random"}}
        self.manifest: dict = {"model": {}}
        self.status: dict[int, tuple[int, str]] = {}
        self.headers: dict[int, dict[str, str]] = {}
        self.request_headers: dict[int, dict[str, str]] = {}

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return self.request_headers.get(idx, {})

    def set_response_status(self, code: int, phrase: str, idx: int = 0) -> None:
        self.status[idx] = (code, phrase)

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.headers.setdefault(idx, {})["Content-Type"] = value

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.headers.setdefault(idx, {})[key] = value


@pytest.fixture(scope="module")
def handler(tmp_path_factory) -> EmbeddingHandler:
    context = MockContext(str(tmp_path_factory.mktemp("model_dir")))
    instance = EmbeddingHandler()
    instance.initialize(context)
    instance.context = context
    return instance


def run(handler: EmbeddingHandler, data: list[dict]) -> list[bytes]:
    return handler.postprocess(handler.inference(handler.preprocess(data)))


def test_a_batch_of_n_gets_n_answers_and_bad_images_only_fail_themselves(handler, photos):
    handler.context.status.clear()
    data = [{"body": photos["coffee"]}, {"body": b"not an image"}, {"data": photos["rocket"]}, {"body": b""}]
    answers = run(handler, data)
    assert len(answers) == 4
    assert sorted(handler.context.status) == [1, 3]
    assert handler.context.status[1][0] == 415 and handler.context.status[3][0] == 400
    for idx in (0, 2):
        doc = json.loads(answers[idx])
        vector = np.frombuffer(base64.b64decode(doc["embedding"]), dtype="<f4")
        assert doc["model"] == "resnet50" and doc["dimension"] == 2048 == vector.shape[0]
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    assert json.loads(answers[1])["status"] == 415
    assert all(handler.context.headers[idx]["X-Lookalike-Batch"] == "4" for idx in range(4))


def test_an_all_bad_batch_answers_every_request_without_running_the_model(handler):
    handler.context.status.clear()
    answers = run(handler, [{"body": b"x"}, {"body": b""}])
    assert len(answers) == 2 and sorted(handler.context.status) == [0, 1]


def test_the_list_encoding_is_chosen_per_request(handler, photos):
    handler.context.request_headers = {1: {"x-lookalike-encoding": "list"}}
    answers = run(handler, [{"body": photos["chelsea"]}, {"body": photos["chelsea"]}])
    handler.context.request_headers = {}
    first, second = json.loads(answers[0]), json.loads(answers[1])
    assert first["encoding"] == "base64" and second["encoding"] == "list"
    decoded = np.frombuffer(base64.b64decode(first["embedding"]), dtype="<f4")
    assert np.allclose(decoded, np.asarray(second["embedding"], dtype=np.float32), atol=1e-6)


def test_region_vectors_are_asked_for_per_request_and_a_bad_scheme_fails_only_itself(handler, photos):
    handler.context.status.clear()
    handler.context.request_headers = {2: {"X-Lookalike-Regions": "grid2"}}
    data = [{"body": photos["coffee"], "regions": b"win2"}, {"body": photos["coffee"]}, {"body": photos["rocket"]},
            {"body": photos["coffee"], "regions": b"everywhere"}, {"body": b"junk", "regions": b"win2"}]  # fmt: skip
    answers = run(handler, data)
    handler.context.request_headers = {}
    assert sorted(handler.context.status) == [3, 4]
    assert handler.context.status[3][0] == 400 and "regions must be one of" in handler.context.status[3][1]
    regional, plain, quadrants = (json.loads(answers[i]) for i in range(3))
    assert "region_vectors" not in plain and regional["regions"] == "win2" and quadrants["regions"] == "grid2"
    assert [tuple(box) for box, _ in decode_regions(regional)] == SCHEMES["win2"]
    assert len(decode_regions(quadrants)) == 4
    # The whole-image vector does not depend on whether regions were asked for in the same batch.
    assert np.allclose(decode_vector(regional), decode_vector(plain), atol=1e-5)
    vectors = np.stack([vector for _, vector in decode_regions(regional)])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # Each region is its own crop (random weights make every vector alike, but not equal).
    assert float(np.abs(vectors - decode_vector(plain)).max()) > 1e-3
    assert float(np.abs(vectors[0] - vectors[8]).max()) > 1e-3


def test_each_stage_reports_its_time_and_the_images_it_saw(handler, photos):
    """decode, preprocess and inference each add their milliseconds to a counter, and the images
    decoded to another (a refused upload counts for decode only)."""
    handler.context.metrics.added.clear()
    run(handler, [{"body": photos["coffee"]}, {"body": b"not an image"}, {"body": photos["rocket"]}])
    added = handler.context.metrics.added
    assert added["LookalikeImages"] == 2
    assert all(added[name] > 0 for name in ("LookalikeDecodeMs", "LookalikePreprocessMs", "LookalikeInferenceMs"))
