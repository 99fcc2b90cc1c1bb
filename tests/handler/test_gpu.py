"""The CUDA path: the device TorchServe assigns, and each GPU precision against CPU fp32.

Skipped without a CUDA device (CI has none); run on a GPU machine with `pytest -m gpu`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lookalike_handler.decode import decode_image
from lookalike_handler.embedder import Embedder, worker_device
from lookalike_handler.settings import HandlerSettings

from lookalike.serving.weights import resolve

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
LITE = "efficientnet_lite0"


def test_worker_uses_the_assigned_gpu():
    assert worker_device(0) == torch.device("cuda", 0)
    assert worker_device(None) == torch.device("cpu")


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "auto"])
def test_gpu_vectors_match_cpu_fp32(precision, photos):
    images = [decode_image(data) for data in photos.values()]
    weights = str(resolve(LITE))
    cpu = Embedder.load(HandlerSettings(backbone=LITE), weights).embed_images(images).numpy()
    gpu_embedder = Embedder.load(HandlerSettings(backbone=LITE, precision=precision), weights, worker_device(0))
    assert gpu_embedder.precision == ("bf16" if precision == "auto" else precision)
    gpu = gpu_embedder.embed_images(images).numpy()
    cosine = (cpu * gpu).sum(axis=1)
    assert gpu.dtype == np.float32 and gpu.shape == cpu.shape
    assert cosine.min() >= 0.99, cosine


def test_jpegs_decode_on_the_gpu_and_meet_the_bound_against_cpu_fp32():
    """The GPU path from bytes (nvJPEG in batches, tensor resize and crop on the device, bf16):
    cosine >= 0.99 per image and top-10 overlap >= 0.95 against the CPU path at fp32."""
    from lookalike.photos import all_photos

    blobs = list(all_photos().values())
    weights = str(resolve(LITE))
    cpu = Embedder.load(HandlerSettings(backbone=LITE, precision="fp32"), weights).embed_bytes(blobs).numpy()
    gpu_embedder = Embedder.load(HandlerSettings(backbone=LITE), weights, worker_device(0))
    assert gpu_embedder.device_decode and gpu_embedder.precision == "bf16"
    gpu = gpu_embedder.embed_bytes(blobs).numpy()
    cosine = (cpu * gpu).sum(axis=1)
    assert cosine.min() >= 0.99, cosine

    def neighbours(v: np.ndarray) -> np.ndarray:
        similarity = v @ v.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argsort(-similarity, axis=1)[:, :10]

    pairs = zip(neighbours(cpu), neighbours(gpu), strict=True)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in pairs]) >= 0.95


def test_the_gpu_path_sends_what_nvjpeg_cannot_take_to_the_cpu_one_by_one(photos):
    import io

    from lookalike_handler.errors import CorruptImage
    from PIL import Image

    def encoded(img: Image.Image, fmt: str) -> bytes:
        buffer = io.BytesIO()
        img.save(buffer, format=fmt)
        return buffer.getvalue()

    embedder = Embedder.load(HandlerSettings(backbone=LITE, weights="random"), None, worker_device(0))
    jpeg = next(iter(photos.values()))
    cmyk = encoded(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG")
    png = encoded(Image.new("RGB", (64, 64), (10, 200, 30)), "PNG")
    prepared = embedder.prepare([jpeg, cmyk, png, jpeg[: len(jpeg) // 2]])
    assert all(item.device.type == "cuda" for item in prepared[:3])
    assert isinstance(prepared[3], CorruptImage)
