"""The fast path against the quality bound: parallel decoding is exact; draft decoding stays within
cosine >= 0.99 of the exact path and keeps >= 95 % of each photo's top-10 neighbours."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handler import precision as precision_mod
from handler.backbones import get_backbone
from handler.embedder import Embedder
from handler.errors import ConfigError, ImageError
from handler.settings import HandlerSettings
from lookalike.weights import resolve

LITE = "efficientnet_lite0"


@pytest.fixture(scope="module")
def gallery(photos, interiors) -> list[bytes]:
    return [*photos.values(), *interiors.values()]


@pytest.fixture(scope="module")
def lite0():
    backbone = get_backbone(LITE)
    return backbone, backbone.build(str(resolve(LITE)))


def vectors(lite0, blobs, precision="fp32", draft=False) -> np.ndarray:
    backbone, model = lite0
    embedder = Embedder(backbone, model, torch.device("cpu"), precision, decode_threads=2, draft=draft)
    return np.concatenate([embedder.embed_bytes(blobs[i : i + 8]).numpy() for i in range(0, len(blobs), 8)])


def top10_overlap(reference: np.ndarray, fast: np.ndarray) -> float:
    def neighbours(x: np.ndarray) -> np.ndarray:
        scores = x @ x.T
        np.fill_diagonal(scores, -np.inf)
        return np.argsort(-scores, axis=1)[:, :10]

    ref, got = neighbours(reference), neighbours(fast)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref, got, strict=True)]))


@pytest.fixture(scope="module")
def reference(lite0, gallery) -> np.ndarray:
    return vectors(lite0, gallery)


def test_parallel_decoding_is_bit_identical_and_keeps_errors_in_place(lite0, photos):
    backbone, model = lite0
    blobs = [photos["coffee"], b"not an image", photos["rocket"], photos["chelsea"][:300]]
    serial = Embedder(backbone, model, torch.device("cpu"), "fp32", decode_threads=1).prepare(blobs)
    parallel = Embedder(backbone, model, torch.device("cpu"), "fp32", decode_threads=4).prepare(blobs)
    assert [type(x).__name__ for x in parallel] == [type(x).__name__ for x in serial]
    assert isinstance(parallel[1], ImageError) and isinstance(parallel[3], ImageError)
    assert torch.equal(parallel[0], serial[0]) and torch.equal(parallel[2], serial[2])


def test_draft_decoding_meets_the_quality_bound(lite0, gallery, reference):
    fast = vectors(lite0, gallery, draft=True)
    cosine = (fast * reference).sum(axis=1)
    assert cosine.min() >= 0.99, cosine.min()
    assert top10_overlap(reference, fast) >= 0.95


def test_auto_precision_falls_back_to_fp32_without_bf16_hardware(monkeypatch):
    settings = HandlerSettings(backbone="resnet50", weights="random", precision="auto")
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"avx2", "fma"}))
    plain = Embedder.load(settings, None)
    assert (plain.precision, plain.channels_last) == ("fp32", False)
    monkeypatch.setattr(precision_mod, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"avx512f", "amx_bf16"}))
    fast = Embedder.load(settings, None)
    assert (fast.precision, fast.channels_last) == ("bf16", True)
    with pytest.raises(ConfigError, match="fp32 or auto"):
        monkeypatch.setattr(precision_mod, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"avx2"}))
        Embedder.load(HandlerSettings(backbone="resnet50", weights="random", precision="bf16"), None)


def test_decode_setting_is_validated():
    with pytest.raises(ConfigError, match="decode"):
        HandlerSettings.from_model_config({"handler": {"decode": "fastest"}}, environ={})
    assert HandlerSettings.from_model_config({"handler": {"decode": "draft"}}, environ={}).decode == "draft"
