"""Shared fixtures: real photos, and real TorchServe instances on free loopback ports."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from lookalike import stack
from lookalike.photos import interior_photos, subject_photos
from lookalike.serving import archive
from lookalike.serving.torchserve import TorchServe
from lookalike.settings import Settings
from tests.standin import StandInModelServer

# The batch-proof model: 4 requests or 3 s, whichever first, so 4 concurrent requests share a batch.
BATCH_MODEL = "lite0-batch4"
LITE = "efficientnet_lite0"


@pytest.fixture(scope="session")
def photos() -> dict[str, bytes]:
    return subject_photos()


@pytest.fixture(scope="session")
def interiors() -> dict[str, bytes]:
    return interior_photos()


@pytest.fixture(scope="session")
def coffee(photos) -> bytes:
    return photos["coffee"]


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """A model store with the archives the served tests use, built by the real archive builder."""
    path = tmp_path_factory.mktemp("model_store")
    archive.build("efficientnet_lite0", path)
    archive.build("resnet50", path, name="resnet50-random", random_weights=True)
    # One worker, so the four requests of the batch test cannot be split between two workers.
    batch_proof = {"batchSize": 4, "maxBatchDelay": 3000, "minWorkers": 1, "maxWorkers": 1}
    archive.build("efficientnet_lite0", path, name=BATCH_MODEL, overrides=batch_proof)
    return path


@pytest.fixture(scope="session")
def server(store, tmp_path_factory) -> Iterator[TorchServe]:
    """One TorchServe with lite0, random-weight resnet50 and the batch-proof model; stopped at the end."""
    with stack.torchserve([LITE, "resnet50-random", BATCH_MODEL], store, tmp_path_factory.mktemp("ts")) as instance:
        yield instance


@pytest.fixture(scope="session")
def token_server(store, tmp_path_factory) -> Iterator[TorchServe]:
    """A TorchServe with token authorisation on (as production runs it), serving lite0."""
    with stack.torchserve([LITE], store, tmp_path_factory.mktemp("ts-token"), token_auth=True) as instance:
        yield instance


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def standin() -> Iterator[StandInModelServer]:
    """The fast tier's model server: our wire format and the handler's decoding, no TorchServe."""
    with StandInModelServer() as instance:
        yield instance


def _api(ts_url: str, photos: dict[str, bytes], tmp_path_factory) -> Iterator[stack.ApiThread]:
    settings = Settings(ts_url=ts_url, model=LITE, data_dir=tmp_path_factory.mktemp("api-index"),
                        max_image_bytes=1_000_000)  # fmt: skip
    items = stack.photo_items(photos, tmp_path_factory.mktemp("api-photos"), "subjects", named=True, tags=("sample",))
    stack.ingest(settings, items)
    with stack.ApiThread(settings) as running:
        yield running


@pytest.fixture(scope="session")
def search_api(server, photos, tmp_path_factory) -> Iterator[stack.ApiThread]:
    """The API on an embedded index holding the subject photos, with real TorchServe behind it."""
    yield from _api(server.inference_url, photos, tmp_path_factory)


@pytest.fixture(scope="session")
def standin_api(standin, photos, tmp_path_factory) -> Iterator[stack.ApiThread]:
    """The same API and index with the stand-in model server behind it (fast tier)."""
    yield from _api(standin.inference_url, photos, tmp_path_factory)
