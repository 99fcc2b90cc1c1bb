"""The GPU path's decoding (handler/device_decode.py) run where every machine can run it: on the
CPU (`decode_on="device"` puts the same code on the worker's device, here the CPU). What only a GPU
shows (nvJPEG, the figures) is in tests/handler/test_gpu.py and scripts/gpu_check.sh.

Fast tier: which device decodes, which uploads go to the CPU path one by one, limits read from the
header, EXIF orientation. Slow tier: the quality bound of the path's vectors against the CPU path's
on the real photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from lookalike_handler import device_decode
from lookalike_handler.backbones import get_backbone
from lookalike_handler.decode import Limits, decode_image
from lookalike_handler.embedder import Embedder
from lookalike_handler.errors import ConfigError, CorruptImage, ImageTooLarge
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.transforms import FIT
from PIL import Image

from lookalike.photos import all_photos
from lookalike.serving.weights import resolve
from tests.conftest import encode

LITE = "efficientnet_lite0"
RANDOM = {"backbone": LITE, "weights": "random"}


def gradient(width: int = 96, height: int = 64) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(x, (height, width, 1)), np.broadcast_to(y, (height, width, 1)),
                          np.broadcast_to((x + y) / 2, (height, width, 1))], axis=2)  # fmt: skip
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def with_orientation(img: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[device_decode.EXIF_ORIENTATION] = orientation
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


def test_a_cpu_worker_decodes_with_pillow_unless_told_and_a_wrong_value_is_refused():
    assert not Embedder.load(HandlerSettings(**RANDOM), None).device_decode  # auto on a CPU: Pillow
    assert Embedder.load(HandlerSettings(**RANDOM, decode_on="device"), None).device_decode
    assert not Embedder.load(HandlerSettings(**RANDOM, decode_on="cpu"), None).device_decode
    with pytest.raises(ConfigError, match="decode_on must be"):  # model-config.yaml's handler section
        HandlerSettings.from_model_config({"handler": {**RANDOM, "decode_on": "gpu"}})


def test_what_the_device_cannot_take_goes_to_the_cpu_path_one_by_one(monkeypatch):
    embedder = Embedder.load(HandlerSettings(**RANDOM, decode_on="device"), None)
    sent: list[bytes] = []
    decode = device_decode.decode

    def spy(blobs, device):
        sent.extend(blobs)
        return decode(blobs, device)

    monkeypatch.setattr(device_decode, "decode", spy)
    rgb = encode(gradient(), "JPEG", quality=90)
    grey = encode(gradient().convert("L"), "JPEG", quality=90)
    png = encode(gradient(), "PNG")
    cmyk = encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)
    corrupt = rgb[: len(rgb) // 2]  # its header is whole: the device tries, refuses, the CPU path names it
    huge = encode(Image.new("RGB", (300, 200)), "JPEG")
    limits = Limits(max_pixels=50_000)
    regions = rgb
    prepared, _ = embedder.prepare_timed([rgb, grey, png, cmyk, corrupt, huge, regions], limits,
                                         ["none"] * 6 + ["grid2"])  # fmt: skip
    assert [type(item).__name__ for item in prepared[:4]] == ["Tensor"] * 4
    assert isinstance(prepared[4], CorruptImage) and "truncated or corrupt" in prepared[4].reason
    assert isinstance(prepared[5], ImageTooLarge) and "300x200" in prepared[5].reason  # from the header
    assert prepared[6].shape[0] == 5  # whole image + 4 regions, cut on the CPU path
    assert set(sent) == {rgb, grey, corrupt}  # only 8-bit RGB/grey JPEGs within the limits, regions aside
    expected, _ = embedder._prepare_cpu([png, cmyk], limits, ["none", "none"])
    assert torch.equal(prepared[2], expected[0]) and torch.equal(prepared[3], expected[1])  # the very same path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_turns_pixels_as_pillow_does(orientation):
    data = with_orientation(gradient(), orientation)
    header = device_decode.header(data, Limits())
    assert header is not None and header.orientation == orientation
    (pixels,) = device_decode.decode([data], torch.device("cpu"))
    upright = device_decode.orient(pixels, header.orientation)
    expected = torch.from_numpy(np.asarray(decode_image(data)).copy()).permute(2, 0, 1)
    assert upright.shape == expected.shape
    assert (upright.int() - expected.int()).abs().float().mean() < 1.0  # the same libjpeg-turbo, the same turn


@pytest.mark.parametrize("fit", ["crop", "full"])
def test_tensor_resize_and_crop_match_pillows_within_a_few_levels(fit, photos):
    spec = get_backbone(LITE).spec
    for data in list(photos.values())[:6]:
        img = decode_image(data)
        on_cpu = FIT[fit](img, spec)
        pixels = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)
        on_device = device_decode.preprocess(pixels, spec, fit)
        assert on_device.shape == on_cpu.shape == (3, spec.crop, spec.crop)
        assert (on_device.int() - on_cpu.int()).abs().float().mean() < 2.0


@pytest.mark.slow
def test_the_device_paths_vectors_meet_the_bound_against_the_cpu_path():
    """Cosine >= 0.99 per image and top-10 overlap >= 0.95 on all the bundled photos (issue 37's bound)."""
    weights = str(resolve(LITE))
    blobs = list(all_photos().values())
    assert len(blobs) >= 50
    vectors = {on: Embedder.load(HandlerSettings(backbone=LITE, decode_on=on), weights).embed_bytes(blobs).numpy()
               for on in ("cpu", "device")}  # fmt: skip
    cosine = (vectors["cpu"] * vectors["device"]).sum(axis=1)
    assert cosine.min() >= 0.99, cosine

    def neighbours(v: np.ndarray) -> np.ndarray:
        similarity = v @ v.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1)[:, :10]

    pairs = zip(neighbours(vectors["cpu"]), neighbours(vectors["device"]), strict=True)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in pairs])
    assert overlap >= 0.95, overlap
