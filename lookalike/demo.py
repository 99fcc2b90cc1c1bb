"""`make demo`: build the archive, start TorchServe, embed real photos, show look-alikes.

Uses resnet50 when its pretrained weights can be found, else the offline backbone
(efficientnet_lite0), and says which. Leaves TorchServe running; `make stop` ends it.
"""

from __future__ import annotations

import io
import sys
import time

import numpy as np
from PIL import Image, ImageOps

from . import archive, weights
from .client import EmbeddingClient
from .photos import all_photos
from .server import DEFAULT_STORE, TorchServe

QUERIES = ("coffee", "chelsea", "motorcycle_left", "astronaut")


def choose_model() -> str:
    try:
        weights.resolve("resnet50")
        return "resnet50"
    except weights.WeightsNotFound as exc:
        first = str(exc).splitlines()[0]
        print(f"- {first}\n  Using the offline backbone efficientnet_lite0 (see `make mar` for ResNet50).")
        return "efficientnet_lite0"


def variant(data: bytes) -> bytes:
    """A look-alike of a photo: cropped, mirrored, re-encoded."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    img = ImageOps.mirror(img.crop((w // 10, h // 10, w - w // 8, h - h // 8)))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def main() -> int:
    model = choose_model()
    mar = DEFAULT_STORE / f"{model}.mar"
    if not mar.exists():
        print(f"- building {mar.relative_to(DEFAULT_STORE.parent)} ...")
        archive.build(model)
    server = TorchServe({model: mar.name})
    if server.pid() is None:
        print("- starting TorchServe (first start takes ~10-20 s) ...")
        server.start(timeout=300)
    print(f"- TorchServe ready at {server.inference_url}/predictions/{model}")

    client = EmbeddingClient(server.inference_url, model)
    photos = all_photos()
    started = time.perf_counter()
    names = list(photos)
    xb = np.stack([client.embed(photos[name]) for name in names])
    elapsed = time.perf_counter() - started
    print(f"- embedded {len(names)} real photos in {elapsed:.1f} s ({len(names) / elapsed:.1f} img/s), {xb.shape[1]}-d")

    print("\nQuery (a cropped, mirrored, re-encoded copy)  ->  nearest photos by cosine similarity")
    for query in QUERIES:
        xq = client.embed(variant(photos[query]))
        scores = xb @ xq
        top = np.argsort(-scores)[:3]
        hits = ", ".join(f"{names[i]} {scores[i]:.3f}" for i in top)
        print(f"  {query:<18} -> {hits}")

    print(
        "\nTry it yourself:\n"
        f"  curl -s -H 'Content-Type: image/jpeg' --data-binary @photo.jpg {server.inference_url}/predictions/{model}\n"
        "TorchServe keeps running; `make stop` stops it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
