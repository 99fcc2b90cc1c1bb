"""Shared fixtures: real photos, and real TorchServe instances on free loopback ports."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from lookalike import archive
from lookalike.client import EmbeddingClient
from lookalike.photos import interior_photos, subject_photos
from lookalike.server import PORT_KEYS, TorchServe, free_port
from opensearch.embedded import EmbeddedIndex
from opensearch.embedding import probe
from opensearch.ingest import Ingestor
from opensearch.settings import SearchSettings
from opensearch.sources import Item
from tests.apiserver import ApiServer

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


def _instance(store: Path, run_dir: Path, models: dict[str, str], token_auth: bool = False) -> TorchServe:
    return TorchServe(
        models=models,
        store=store,
        run_dir=run_dir,
        ports={key: free_port() for key in PORT_KEYS},
        token_auth=token_auth,
    )


@pytest.fixture(scope="session")
def server(store, tmp_path_factory):
    """One TorchServe with lite0, random-weight resnet50 and the batch-proof model; stopped at the end."""
    models = {name: f"{name}.mar" for name in ("efficientnet_lite0", "resnet50-random", BATCH_MODEL)}
    instance = _instance(store, tmp_path_factory.mktemp("ts"), models)
    instance.start(timeout=300)
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def token_server(store, tmp_path_factory):
    """A TorchServe with token authorisation on (as production runs it), serving lite0."""
    instance = _instance(
        store, tmp_path_factory.mktemp("ts-token"), {"efficientnet_lite0": "efficientnet_lite0.mar"}, True
    )
    instance.start(timeout=300)
    yield instance
    instance.stop()


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def search_api(server, photos, tmp_path_factory):
    """The API on an embedded index holding the subject photos (ingested through the API's own model)."""
    data_dir = tmp_path_factory.mktemp("api-index")
    settings = SearchSettings(ts_url=server.inference_url, model=LITE, data_dir=data_dir, max_image_bytes=1_000_000)
    info = probe(EmbeddingClient(server.inference_url, LITE))
    index = EmbeddedIndex(data_dir, settings.alias, info.model, info.dimension)
    folder = tmp_path_factory.mktemp("api-photos")
    items = []
    for name, data in photos.items():
        (folder / f"{name}.jpg").write_bytes(data)
        items.append(Item(source=str(folder / f"{name}.jpg"), id=name, category="subjects", tags=["sample"]))
    Ingestor(settings, index, info, lambda: EmbeddingClient(server.inference_url, LITE)).run(items, progress=False)
    index.close()
    with ApiServer(settings) as running:
        yield running
