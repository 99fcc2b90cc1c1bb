"""The model store of the operations tests: the archives with one worker each, so three model
servers, two APIs, OpenSearch and the session's other servers fit the machine's memory together."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.serving import archive

ONE_WORKER = {"minWorkers": 1, "maxWorkers": 1}


@pytest.fixture(scope="session")
def ops_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ops_store")
    archive.build("efficientnet_lite0", path, overrides=ONE_WORKER)
    archive.build("resnet50", path, name="resnet50-random", random_weights=True, overrides=ONE_WORKER)
    return path
