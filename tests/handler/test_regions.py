"""Region schemes: which windows of an image get their own vector, and how they are cut."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lookalike_handler.errors import BadPayload
from lookalike_handler.regions import SCHEMES, boxes, crops, windows
from lookalike_handler.wire import decode_regions, decode_vector, encode_vector
from PIL import Image


def test_each_scheme_has_the_windows_its_name_says():
    assert [len(SCHEMES[name]) for name in ("none", "grid2", "win2", "win2+3", "grid3")] == [0, 4, 9, 13, 9]
    assert SCHEMES["grid2"] == [(0, 0, 0.5, 0.5), (0.5, 0, 1, 0.5), (0, 0.5, 0.5, 1), (0.5, 0.5, 1, 1)]
    for scheme in SCHEMES.values():
        for left, top, right, bottom in scheme:
            assert 0 <= left < right <= 1 and 0 <= top < bottom <= 1
    assert windows(0.5, 0.25)[4] == (0.25, 0.25, 0.75, 0.75)  # the centre window of win2


def test_crops_cut_the_boxes_out_of_the_pixels():
    img = Image.new("RGB", (400, 200))
    img.paste((255, 0, 0), (200, 100, 400, 200))  # the bottom-right quadrant is red
    quadrants = crops(img, "grid2")
    assert [crop.size for crop in quadrants] == [(200, 100)] * 4
    assert np.asarray(quadrants[3]).reshape(-1, 3).mean(axis=0).tolist() == [255, 0, 0]
    assert np.asarray(quadrants[0]).max() == 0
    assert crops(img, "none") == []


def test_regions_of_a_large_image_are_cut_from_one_reduced_copy():
    """Given the model's resize target, every region keeps a short side of at least that size and
    shows the same part of the picture as a full-resolution cut."""
    img = Image.new("RGB", (2400, 1800))
    img.paste((255, 0, 0), (1200, 900, 2400, 1800))  # the bottom-right quadrant is red
    full, reduced = crops(img, "grid2"), crops(img, "grid2", short_side=256)
    assert [crop.size for crop in full] == [(1200, 900)] * 4
    assert [crop.size for crop in reduced] == [(400, 300)] * 4  # reduced by 3: 900 // 256
    assert np.asarray(reduced[3]).reshape(-1, 3).mean(axis=0).tolist() == [255, 0, 0]
    assert np.asarray(reduced[0]).max() == 0
    small = Image.new("RGB", (600, 400))  # a region's short side (200) is below the target already
    assert [crop.size for crop in crops(small, "grid2", short_side=256)] == [(300, 200)] * 4
    for crop in crops(img, "win2+3", short_side=256):
        assert min(crop.size) >= 256


def test_an_unknown_scheme_is_a_bad_request():
    with pytest.raises(BadPayload, match="regions must be one of"):
        boxes("everywhere")


@pytest.mark.parametrize("encoding", ["base64", "list"])
def test_region_vectors_round_trip_through_the_wire_format(encoding):
    rng = np.random.default_rng(0)
    whole, parts = rng.standard_normal(8).astype(np.float32), rng.standard_normal((4, 8)).astype(np.float32)
    body = encode_vector(whole, "m", encoding, regions=list(zip(SCHEMES["grid2"], parts, strict=True)), scheme="grid2")
    doc = json.loads(body)
    assert doc["regions"] == "grid2"
    assert np.allclose(decode_vector(doc), whole, atol=1e-6)
    decoded = decode_regions(doc)
    assert [box for box, _ in decoded] == SCHEMES["grid2"]
    assert np.allclose(np.stack([v for _, v in decoded]), parts, atol=1e-6)
