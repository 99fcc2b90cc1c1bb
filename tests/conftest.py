"""Shared fixtures: real photos, real TorchServe instances and a real OpenSearch node on free
loopback ports; and the test tiers, derived from the fixtures each test uses.

A test is `slow` (outside `make test-fast`) when it uses, directly or through other fixtures, one
of SLOW_FIXTURES: they start TorchServe, OpenSearch or Chromium, or build archives. A test that
reaches the real OpenSearch node is also `opensearch` (`make test-opensearch`). Fixtures picked at
run time with `request.getfixturevalue` cannot be seen at collection: the parameter that picks one
carries the marker instead, beside its name (tests/backends.py's BACKENDS), and the hook turns an
`opensearch` marker into `slow` too.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from lookalike import opensearch_node, ports, stack
from lookalike.api import process
from lookalike.photos import interior_photos, subject_photos
from lookalike.serving import archive
from lookalike.serving.torchserve import TorchServe
from lookalike.settings import Settings
from tests.backends import BACKENDS, CLIENT_VARIABLES, NODE_FIXTURES, drop_indices, node_url, opensearch_settings
from tests.standin import StandInModelServer

# Each of these starts a server or a browser, or builds archives: a test that uses one is slow.
SLOW_FIXTURES = {
    "store": "builds .mar archives",
    "mar_builder": "builds a .mar archive",
    "server": "starts TorchServe",
    "token_server": "starts TorchServe",
    "opensearch_installation": "installs OpenSearch",
    "opensearch_url": "starts OpenSearch",
    "plain_opensearch_url": "starts OpenSearch",
    "secured_opensearch_url": "starts OpenSearch with the security plugin",
    "v35_opensearch_url": "starts OpenSearch 3.5",
    "ml_opensearch_url": "starts OpenSearch with ml-commons",
    "browser": "starts Chromium",
    "schemathesis": "runs schemathesis over every route of the API (tens of seconds)",
    "installed": "builds a wheel and installs it into a fresh venv (tests/packaging/)",
    "labelled": "fine-tuning embeds every view of it with the real backbone (tests/relevance/test_finetune.py)",
}
OPENSEARCH_FIXTURES = {"opensearch_installation", "opensearch_url", "ml_opensearch_url", *NODE_FIXTURES.values()}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `slow` and `opensearch` from the fixtures each test uses (see the module docstring)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & OPENSEARCH_FIXTURES and not item.get_closest_marker("opensearch"):
            item.add_marker(pytest.mark.opensearch)
        slow = used & SLOW_FIXTURES.keys() or item.get_closest_marker("opensearch")
        if slow and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


# The batch-proof model: 4 requests or 3 s, whichever first, so 4 concurrent requests share a batch.
BATCH_MODEL = "lite0-batch4"
LITE = "efficientnet_lite0"
FULL_MODEL = "lite0-full"  # efficientnet_lite0 with handler.fit: full
INT8_MODEL = "resnet50-int8"  # random-weight resnet50 quantized to int8 by lookalike mar
AUTO_MODEL = "resnet50-auto"  # the same at precision auto, its int8 trunk tried, raced and packed if chosen


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
    archive.build("resnet50", path, name=INT8_MODEL, random_weights=True, handler_overrides={"precision": "int8"})
    archive.build("resnet50", path, name=AUTO_MODEL, random_weights=True, try_int8=True)
    # One worker, so the four requests of the batch test cannot be split between two workers.
    batch_proof = {"batchSize": 4, "maxBatchDelay": 3000, "minWorkers": 1, "maxWorkers": 1}
    archive.build("efficientnet_lite0", path, name=BATCH_MODEL, overrides=batch_proof)
    archive.build("efficientnet_lite0", path, name=FULL_MODEL, handler_overrides={"fit": "full"},
                  overrides={"minWorkers": 1, "maxWorkers": 1})  # fmt: skip
    return path


@pytest.fixture(scope="session")
def server(store, tmp_path_factory) -> Iterator[TorchServe]:
    """One TorchServe with lite0, random-weight resnet50 (and its int8 and auto archives), the
    batch-proof model and lite0 with the whole-image fit; stopped at the end."""
    models = [LITE, "resnet50-random", BATCH_MODEL, FULL_MODEL, INT8_MODEL, AUTO_MODEL]
    with stack.torchserve(models, store, tmp_path_factory.mktemp("ts")) as instance:
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


@pytest.fixture
def mar_builder() -> Callable[..., Path]:
    """archive.build, for a test that builds an archive of its own."""
    return archive.build


@pytest.fixture(scope="session")
def opensearch_installation() -> tuple[opensearch_node.Installation, Path]:
    """(the OpenSearch installation, its Java home): installed from Maven Central on first use, cached
    outside the repo."""
    return opensearch_node.prepare(say=lambda _: None)


# The secured node's `lookalike` user may work on the tests' aliases only (a test with an alias of
# a new prefix is refused there, with the permission named: add its prefix here).
TEST_ALIASES = ("t-*", "api-*", "cat-*", "dec-*", "down-*", "gallery-*", "lookalike*")


def _node(request, secure: bool, version: str = opensearch_node.DEFAULT_VERSION, with_ml: bool = False,
          ) -> Iterator[str]:  # fmt: skip
    """A real OpenSearch 2.19 + k-NN for the session: OPENSEARCH_URL if set (with OPENSEARCH_USER/
    PASSWORD; then the tests run once, the secured tier is skipped), else a single node this session
    installs (from Maven Central on first use, cached outside the repo), starts on free ports with
    its data in a temporary directory, and stops and removes at the end. While the secured node
    runs, its `lookalike` user's LOOKALIKE_OPENSEARCH_USER/PASSWORD/CA_FILE are in the environment,
    so commands run in-process or as subprocesses reach it as a site's would (a plain node ignores
    them)."""
    url = os.environ.get("OPENSEARCH_URL")
    if url:
        if secure or version != opensearch_node.DEFAULT_VERSION or with_ml:
            pytest.skip("OPENSEARCH_URL names one node: the tests run against it once")
        yield url
        return
    installation, java_home = opensearch_node.prepare(say=lambda _: None, secure=secure, version=version,
                                                      with_ml=with_ml)  # fmt: skip
    home = Path(tempfile.mkdtemp(prefix="lookalike-test-opensearch-"))
    home.chmod(0o755)
    config = opensearch_node.NodeConfig("test", home, ports.free_port(), ports.free_port(), cluster="lookalike-test",
                                        secure=secure, index_patterns=TEST_ALIASES, ml=with_ml)  # fmt: skip
    node = opensearch_node.LocalNode(config, installation, java_home).start()
    saved = {name: os.environ.get(name) for name in CLIENT_VARIABLES}
    try:
        if secure:
            os.environ.update(opensearch_node.security.client_environment(node.url, home))
            os.environ.pop("LOOKALIKE_OPENSEARCH_URL")  # each test names its URL
        yield node.url
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        node.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def plain_opensearch_url(request) -> Iterator[str]:
    """The plain node (HTTP, no security plugin)."""
    yield from _node(request, secure=False)


@pytest.fixture(scope="session")
def secured_opensearch_url(request) -> Iterator[str]:
    """The secured node (TLS, users, roles), reached as its least-privilege `lookalike` user."""
    yield from _node(request, secure=True)


@pytest.fixture(scope="session")
def v35_opensearch_url(request) -> Iterator[str]:
    """A plain OpenSearch 3.5 node (Java 21+; no security plugin of 3.5 is on Maven Central)."""
    yield from _node(request, secure=False, version="3.5.0")


@pytest.fixture(scope="session")
def ml_opensearch_url(request) -> Iterator[str]:
    """A plain 2.19 node with job-scheduler and ml-commons (lookalike opensearch start --ml)."""
    yield from _node(request, secure=False, with_ml=True)


@pytest.fixture(scope="session", params=list(NODE_FIXTURES))
def opensearch_url(request) -> str:
    """Each real node in turn (NODE_FIXTURES): a test of the node runs on plain 2.19, secured 2.19 and 3.5."""
    return request.getfixturevalue(NODE_FIXTURES[request.param])


@pytest.fixture
def os_alias(opensearch_url) -> Iterator[str]:
    """A fresh alias on the real node; its indices are deleted after the test."""
    alias = f"t-{uuid.uuid4().hex[:10]}"
    yield alias
    drop_indices(opensearch_url, alias)


def _api(ts_url: str, photos: dict[str, bytes], tmp_path_factory, backend: str, request) -> Iterator[process.ApiThread]:
    more = {"ts_url": ts_url, "model": LITE, "max_image_bytes": 1_000_000,
            "thumb_dir": tmp_path_factory.mktemp("thumbs")}  # fmt: skip
    url = node_url(request, backend)
    if url:
        settings = opensearch_settings(url, f"api-{uuid.uuid4().hex[:8]}", **more)
    else:
        settings = Settings(data_dir=tmp_path_factory.mktemp("api-index"), **more)
    items = stack.photo_items(photos, tmp_path_factory.mktemp("api-photos"), "subjects", named=True, tags=("sample",))
    stack.ingest(settings, items)
    try:
        with process.ApiThread(settings) as running:
            running.backend = backend
            yield running
    finally:
        if url:
            drop_indices(url, settings.alias)


@pytest.fixture(scope="session")
def search_api(server, photos, tmp_path_factory, request) -> Iterator[process.ApiThread]:
    """The API on an embedded index holding the subject photos, with real TorchServe behind it."""
    yield from _api(server.inference_url, photos, tmp_path_factory, "embedded", request)


@pytest.fixture(scope="session", params=BACKENDS)
def standin_api(standin, photos, tmp_path_factory, request) -> Iterator[process.ApiThread]:
    """The same API with the stand-in model server behind it (fast tier), on each index backend:
    embedded, and the real OpenSearch node."""
    yield from _api(standin.inference_url, photos, tmp_path_factory, request.param, request)
