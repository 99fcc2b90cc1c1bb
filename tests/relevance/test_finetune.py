"""Triplet fine-tuning: it raises held-out mAP on a small labelled set (fixed seed), and the
archive it exports is served by real TorchServe with the vectors the in-process pipeline gives."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from lookalike_handler.decode import decode_image
from lookalike_handler.embedder import Embedder
from lookalike_handler.settings import HandlerSettings

from lookalike import stack
from lookalike.relevance import finetune
from lookalike.serving import archive
from lookalike.serving.client import ModelClient
from lookalike.serving.weights import resolve

LITE = "efficientnet_lite0"


@pytest.fixture(scope="module")
def labelled(photos, interiors, tmp_path_factory) -> Path:
    """Two kinds: the bundled subject photos and the interiors (a coarse but real labelling)."""
    root = tmp_path_factory.mktemp("labelled")
    for kind, images in (("subjects", photos), ("interiors", interiors)):
        (root / kind).mkdir()
        for name, data in images.items():
            (root / kind / f"{name}.jpg").write_bytes(data)
    return root


def test_finetuning_raises_held_out_map(labelled, tmp_path):
    out = tmp_path / "finetune.json"
    assert finetune.main([str(labelled), "--no-export", "--views", "2", "--seed", "0", "--no-progress",
                          "--out", str(out)]) == 0  # fmt: skip
    report = json.loads(out.read_text())
    assert report["validation"] >= 10 and report["classes"] == 2
    assert report["after"]["mAP@10"] > report["before"]["mAP@10"] + 0.05, report


def test_the_exported_archive_serves_the_in_process_vectors(labelled, photos, tmp_path):
    store = tmp_path / "store"
    args = [str(labelled), "--views", "1", "--epochs", "5", "--dim", "64", "--name", "lite0-ft-test",
            "--version", "2.0", "--store", str(store), "--no-progress", "--out", str(tmp_path / "f.json")]  # fmt: skip
    assert finetune.main(args) == 0
    mar = store / "lite0-ft-test.mar"
    handler = archive.describe(mar)["handler"]
    assert handler["model_id"] == "lite0-ft-test" and handler["dimension"] == 64 and handler["head"] == "head.pt"
    with zipfile.ZipFile(mar) as packed:
        packed.extract("head.pt", tmp_path)
        assert json.loads(packed.read("MAR-INF/MANIFEST.json"))["model"]["modelVersion"] == "2.0"
    local = Embedder.load(HandlerSettings(backbone=LITE, head="head.pt", model_id="lite0-ft-test", dimension=64),
                          str(resolve(LITE)), model_dir=str(tmp_path))  # fmt: skip
    expected = local.embed_images([decode_image(photos["coffee"])])[0].numpy()
    with stack.torchserve(["lite0-ft-test"], store, tmp_path / "ts") as server:
        client = ModelClient(server.inference_url, "lite0-ft-test")
        try:
            info = client.info()
            served = client.embed(photos["coffee"])
        finally:
            client.close()
    assert info.model == "lite0-ft-test" and info.dimension == 64
    assert np.allclose(served, expected, atol=1e-5) and abs(np.linalg.norm(served) - 1) < 1e-5
