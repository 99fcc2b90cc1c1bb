"""The truncated trunks: shapes, equality with the full models, and that Lite0 is really pretrained."""

from __future__ import annotations

import pytest
import torch
from lookalike_handler.backbones import BACKBONES, ResNetTrunk, get_backbone
from lookalike_handler.decode import decode_image
from lookalike_handler.embedder import Embedder
from lookalike_handler.errors import ConfigError
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.transforms import preprocess
from torch import nn
from torchvision.models import resnet50

from lookalike.serving.weights import resolve

ESPRESSO = 967
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


def test_resnet50_truncation_equals_full_models_pooled_features():
    torch.manual_seed(0)
    full = resnet50(weights=None).eval()
    trunk = ResNetTrunk(full).eval()
    full.fc = nn.Identity()  # the full model's forward up to the pooled features
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        ours, theirs = trunk(x), full(x)
    assert ours.shape == (2, 2048)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_embedder_gives_unit_vectors_of_the_registered_dimension(name, photos):
    embedder = Embedder.load(HandlerSettings(backbone=name, weights="random"), None)
    vectors = embedder.embed_images([decode_image(photos["coffee"]), decode_image(photos["rocket"])])
    assert vectors.shape == (2, BACKBONES[name].dimension) and vectors.dtype == torch.float32
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)


def test_efficientnet_lite0_weights_are_imagenet_pretrained(photos):
    """With the shipped weights and our preprocessing, the classifier head names the photos right."""
    backbone = get_backbone("efficientnet_lite0")
    trunk = backbone.build(str(resolve("efficientnet_lite0")))
    batch = preprocess([decode_image(photos["coffee"]), decode_image(photos["chelsea"])], backbone.spec)
    with torch.inference_mode():
        top5 = trunk.net(batch).topk(5).indices
    assert top5[0, 0].item() == ESPRESSO
    assert top5[1, 0].item() in CATS


def test_dimension_mismatch_is_a_config_error():
    with pytest.raises(ConfigError, match="dimension 512"):
        Embedder.load(HandlerSettings(backbone="resnet50", dimension=512, weights="random"), None)


def test_missing_weights_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Embedder.load(HandlerSettings(backbone="resnet50"), str(tmp_path / "nope.pth"))
