"""A catalogue to read and write through the API: the real photos (subjects and interiors) in an
index of each backend, with the stand-in model server in front (fast tier)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from lookalike import stack
from lookalike.api import process
from lookalike.settings import Settings
from tests.backends import BACKENDS, drop_indices, node_url, opensearch_settings

LITE = "efficientnet_lite0"
WRITE_KEY = "write-key-for-tests"


def build_catalogue(request, ts_url: str, backend: str, photos, interiors, tmp_path_factory) -> Iterator[Settings]:
    """Settings of an index holding the real photos (categories subjects, interiors), ids = names."""
    more = {"ts_url": ts_url, "model": LITE, "max_image_bytes": 1_000_000,
            "thumb_dir": tmp_path_factory.mktemp("thumbs")}  # fmt: skip
    url = node_url(request, backend)
    if url:
        settings = opensearch_settings(url, f"cat-{uuid.uuid4().hex[:8]}", **more)
    else:
        settings = Settings(data_dir=tmp_path_factory.mktemp("catalogue"), **more)
    folder = tmp_path_factory.mktemp("catalogue-photos")
    items = stack.photo_items(photos, folder / "subjects", "subjects", named=True, tags=("sample",))
    items += stack.photo_items(dict(list(interiors.items())[:12]), folder / "interiors", "interiors", named=True)
    report = stack.ingest(settings, items)
    assert report.indexed == len(items)
    yield settings
    if url:
        drop_indices(url, settings.alias)


@pytest.fixture(scope="module", params=BACKENDS)
def catalogue(request, standin, photos, interiors, tmp_path_factory) -> Iterator[Settings]:
    """The catalogue behind the stand-in model server, on each index backend."""
    yield from build_catalogue(request, standin.inference_url, request.param, photos, interiors, tmp_path_factory)


@pytest.fixture
def api(catalogue) -> Callable[..., AbstractContextManager[process.ApiThread]]:
    """api(**settings) -> the API over the catalogue with these settings changed (keys, CORS ...)."""
    return lambda **changes: process.ApiThread(catalogue.replace(**changes))
