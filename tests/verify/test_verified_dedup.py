"""Verified de-duplication over an embedded index of real photos (fast: stand-in vectors propose the
candidates, features are made from the bytes in hand, as PUT /images does)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from lookalike import dedup
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.verify import extract
from lookalike.verify.store import FeatureStore
from tests.standin import standin_vector


def jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def index_of(images: dict[str, bytes], tmp_path) -> tuple[EmbeddedIndex, FeatureStore]:
    index = EmbeddedIndex(tmp_path / "index", "t", "standin", 1280)
    store = FeatureStore(tmp_path / "features", "t", 10_000_000)
    docs = []
    for n, (name, data) in enumerate(images.items()):
        width, height = Image.open(io.BytesIO(data)).size
        docs.append(Doc(id=name, vector=standin_vector(data, 1280), model="standin", source=None, width=width,
                        height=height, ingested_at=f"2026-01-01T00:00:{n:02d}"))  # fmt: skip
        store.put(name, extract(data))
    assert index.upsert(docs)[0] == len(docs)
    return index, store


def test_copies_and_parts_group_under_the_largest_and_other_shots_stack_apart(photos, tmp_path):
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    meme = Image.new("RGB", (coffee.width, coffee.height + 160), "white")
    meme.paste(coffee, (0, 80))
    draw = ImageDraw.Draw(meme)
    for x in range(30, 560, 90):
        draw.rectangle((x, 25, x + 60, 55), fill="black")
    images = {"coffee": photos["coffee"], "meme": jpeg(meme), "crop": jpeg(coffee.crop((150, 60, 400, 300))),
              "left": photos["motorcycle_left"], "right": photos["motorcycle_right"],
              "chelsea": photos["chelsea"]}  # fmt: skip
    index, store = index_of(images, tmp_path)
    groups, stacks = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert len(groups) == 1, groups
    group = groups[0]
    assert group["keep"]["id"] == "meme"  # the most pixels
    verdicts = {dup["id"]: dup["verdict"] for dup in group["duplicates"]}
    assert verdicts == {"coffee": "copy", "crop": "part"}, group
    assert all(dup["reason"] for dup in group["duplicates"])
    assert [sorted(image["id"] for image in stack["images"]) for stack in stacks] == [["left", "right"]]
    earliest, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10, keep="earliest")
    assert earliest[0]["keep"]["id"] == "coffee"  # ingested first
    assert {dup["id"] for dup in earliest[0]["duplicates"]} == {"meme", "crop"}


def test_an_image_linked_only_through_another_is_not_grouped_with_the_keeper(photos, tmp_path):
    """A photo pasted into a small copy of a host: the collage is part-linked to the photo and a copy
    of the host, but the host (the largest, the keeper) does not contain the photo."""
    host = Image.open(io.BytesIO(photos["astronaut"])).convert("RGB")  # 512 x 512
    collage = host.resize((384, 384))
    collage.paste(Image.open(io.BytesIO(photos["chelsea"])).convert("RGB").resize((150, 100)), (20, 20))
    images = {"host": photos["astronaut"], "collage": jpeg(collage), "cat": photos["chelsea"]}
    index, store = index_of(images, tmp_path)
    groups, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert [(g["keep"]["id"], sorted(d["id"] for d in g["duplicates"])) for g in groups] == [("host", ["collage"])]


def test_the_feature_store_touches_its_folder_only_when_used(tmp_path, photos):
    folder = tmp_path / "features"
    store = FeatureStore(folder, "t", 10_000_000)
    store.drop("nothing")  # a DELETE of an image never verified
    store.close()
    assert not folder.exists()
    store = FeatureStore(folder, "t", 10_000_000)
    found, why = store.get("gone", str(tmp_path / "missing.jpg"))
    assert found is None and "cannot be read" in why  # a missing source is a reason, not a crash
    (tmp_path / "cat.jpg").write_bytes(photos["chelsea"])
    made, _ = store.get("cat", str(tmp_path / "cat.jpg"))
    again, _ = FeatureStore(folder, "t", 10_000_000).get("cat", None)  # kept: no source needed now
    assert made is not None and again is not None and again.count == made.count
    store.close()


def test_in_an_index_with_region_vectors_a_pasted_photo_is_found_by_its_window(standin, photos, tmp_path):
    """Real ingest (stand-in model server) into a grid2 index: the coffee photo pasted over a quarter
    of a larger rocket photo (the collage has the most pixels, so it is the keeper whatever order
    ingest writes them in). Whole against whole their cosine is under the candidate threshold; the
    collage's window finds the photo, and verification says it is a part of the collage."""
    from lookalike import stack
    from lookalike.index import open_index
    from lookalike.settings import Settings

    settings = Settings(ts_url=standin.inference_url, data_dir=tmp_path / "index", regions="grid2", home=tmp_path)
    canvas = Image.open(io.BytesIO(photos["rocket"])).convert("RGB").resize((800, 534))  # more pixels than coffee
    canvas.paste(Image.open(io.BytesIO(photos["coffee"])).convert("RGB").resize((400, 267)), (0, 0))
    chosen = {"collage": jpeg(canvas), "coffee": photos["coffee"], "chelsea": photos["chelsea"]}
    report = stack.ingest(settings, stack.photo_items(chosen, tmp_path / "photos", named=True))
    assert report.indexed == 3
    index, store = open_index(settings, "efficientnet_lite0", 1280), FeatureStore.of(settings)
    whole, _ = dedup.find_verified(index, store, by_regions=False)
    assert whole == []  # the candidates by whole vectors alone miss it
    groups, _ = dedup.find_verified(index, store)
    assert [(g["keep"]["id"], [(d["id"], d["verdict"]) for d in g["duplicates"]]) for g in groups] == [
        ("collage", [("coffee", "part")])]  # fmt: skip
    index.close()
    store.close()
