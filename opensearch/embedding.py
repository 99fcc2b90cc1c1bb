"""Image bytes -> vectors through TorchServe: what the search side knows of the model server.

The index's model id and dimension come from the served model itself: `probe()` embeds a
tiny generated image once and reads them off the answer.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from lookalike.client import EmbeddingClient, ModelServerError

RETRYABLE = (503, 507)


@dataclass(frozen=True)
class ModelInfo:
    endpoint: str  # TorchServe model name
    model: str  # backbone id the vectors come from
    dimension: int


def probe_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def probe(client: EmbeddingClient) -> ModelInfo:
    """Ask the model server what it serves (raises ModelServerError when it cannot answer)."""
    doc = client.embed_response(probe_image())
    return ModelInfo(client.model, doc["model"], int(doc["dimension"]))


def embed_with_retry(client: EmbeddingClient, image: bytes, tries: int = 4) -> np.ndarray:
    """Embed, retrying the model server's 503/507 (overload, worker restart) with back-off."""
    for attempt in range(tries):
        try:
            return client.embed(image)
        except ModelServerError as exc:
            if exc.status not in RETRYABLE or attempt == tries - 1:
                raise
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")
