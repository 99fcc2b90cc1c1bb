"""The `fit` setting: how an image fills the model's input ("crop", the default, or "full")."""

from __future__ import annotations

import pytest
import torch
from lookalike_handler.backbones import get_backbone
from lookalike_handler.decode import decode_image
from lookalike_handler.embedder import Embedder
from lookalike_handler.errors import ConfigError
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.transforms import resize_full

from lookalike.serving.client import ModelClient
from lookalike.serving.weights import resolve

LITE = "efficientnet_lite0"


@pytest.fixture(scope="module")
def lite0():
    backbone = get_backbone(LITE)
    return backbone, backbone.build(str(resolve(LITE)))


def embedder(lite0, fit: str) -> Embedder:
    backbone, model = lite0
    return Embedder(backbone, model, torch.device("cpu"), "fp32", decode_threads=1, fit=fit)


def test_full_keeps_the_whole_picture_at_the_input_size(photos):
    spec = get_backbone(LITE).spec
    img = decode_image(photos["astronaut"])  # 512 x 512; take a wide one too
    wide = img.crop((0, 0, 512, 200))
    for picture in (img, wide):
        pixels = resize_full(picture, spec)
        assert pixels.shape == (3, spec.crop, spec.crop) and pixels.dtype == torch.uint8
    # the wide strip's left and right edges survive (a centre crop would cut them)
    strip = resize_full(wide, spec)
    assert strip[:, :, 0].float().std() > 0 and strip[:, :, -1].float().std() > 0


def test_full_batches_and_is_deterministic(lite0, photos):
    full = embedder(lite0, "full")
    blobs = [photos[name] for name in ("coffee", "chelsea", "rocket", "astronaut")]
    together = full.embed_bytes(blobs)
    alone = torch.cat([full.embed_bytes([blob]) for blob in blobs])
    assert torch.allclose(together, alone, atol=1e-5)  # a batch answers what single requests answer
    assert torch.equal(together, full.embed_bytes(blobs))  # and again, bit for bit
    crop = embedder(lite0, "crop").embed_bytes(blobs)
    cosine = torch.nn.functional.cosine_similarity(together, crop)
    assert (cosine < 0.999).all() and (cosine > 0.5).all()  # other pixels, the same picture


def test_the_model_id_names_the_fit_and_bad_fits_are_refused(lite0):
    assert embedder(lite0, "crop").model_id == LITE  # unchanged: indexes built before keep working
    assert embedder(lite0, "full").model_id == f"{LITE}+full"
    assert HandlerSettings.from_model_config({"handler": {"fit": "full"}}, environ={}).fit == "full"
    with pytest.raises(ConfigError, match="fit must be one of crop, full"):
        HandlerSettings.from_model_config({"handler": {"fit": "stretch"}}, environ={})


def test_a_full_fit_archive_serves_its_own_vector_space(server, photos):
    """Real TorchServe: the archive built with --fit full answers as `efficientnet_lite0+full`, with
    the in-process full-fit vectors."""

    client = ModelClient(server.inference_url, "lite0-full")
    try:
        assert client.info().model == f"{LITE}+full" and client.info().dimension == 1280
        served = torch.from_numpy(client.embed(photos["chelsea"]))
    finally:
        client.close()
    local = Embedder.load(HandlerSettings(backbone=LITE, fit="full"), str(resolve(LITE)))  # as a worker loads it
    assert torch.allclose(local.embed_images([decode_image(photos["chelsea"])])[0], served, atol=1e-5)


@pytest.mark.opensearch
def test_an_index_refuses_vectors_of_another_fit(server, photos, tmp_path, opensearch_url, os_alias):
    """The crop index behind an alias refuses an ingest from the full-fit model before any write."""
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "coffee.jpg").write_bytes(photos["coffee"])
    repo = Path(__file__).resolve().parents[2]

    def ingest(model: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "lookalike", "ingest", str(folder), "--ts-url", server.inference_url, "--model",
               model, "--opensearch-url", opensearch_url, "--alias", os_alias, "--no-progress"]  # fmt: skip
        return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)

    assert ingest(LITE).returncode == 0
    refused = ingest("lite0-full")
    assert refused.returncode == 2 and "model is 'efficientnet_lite0', not 'efficientnet_lite0+full'" in refused.stderr
