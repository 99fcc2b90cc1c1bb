"""Parity: our preprocessing equals torchvision's reference for each backbone, on real photos."""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF
from lookalike_handler.backbones import get_backbone
from lookalike_handler.decode import decode_image
from lookalike_handler.transforms import preprocess, resized_size
from torchvision.models import ResNet50_Weights
from torchvision.transforms import InterpolationMode


def test_resnet50_preprocessing_matches_weights_transforms(photos, interiors):
    reference = ResNet50_Weights.IMAGENET1K_V2.transforms()
    spec = get_backbone("resnet50").spec
    images = [decode_image(data) for data in [*photos.values(), *list(interiors.values())[:6]]]
    ours = preprocess(images, spec)
    theirs = torch.stack([reference(img) for img in images])
    assert ours.shape == theirs.shape == (len(images), 3, 224, 224)
    assert ours.dtype == torch.float32
    # Same resize/crop on uint8; the normalisation arithmetic may differ in the last float bit.
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0), (ours - theirs).abs().max()


def test_efficientnet_lite0_preprocessing_matches_its_documented_recipe(photos):
    """Short side 256 bicubic (antialiased), centre crop 224, (x*255 - 127) / 128."""
    spec = get_backbone("efficientnet_lite0").spec
    images = [decode_image(data) for data in photos.values()]
    theirs = []
    for img in images:
        x = TF.center_crop(TF.resize(img, 256, interpolation=InterpolationMode.BICUBIC, antialias=True), 224)
        theirs.append((TF.pil_to_tensor(x).float() - 127.0) / 128.0)
    assert torch.allclose(preprocess(images, spec), torch.stack(theirs), atol=1e-5, rtol=0)


def test_resized_size_rounds_like_torchvision():
    assert resized_size(640, 480, 232) == (309, 232)
    assert resized_size(480, 640, 232) == (232, 309)
    assert resized_size(300, 300, 232) == (232, 232)
