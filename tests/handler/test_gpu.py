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
