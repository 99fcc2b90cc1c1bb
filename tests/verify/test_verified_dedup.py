"""Verified de-duplication over an embedded index of real photos (fast: stand-in vectors propose the
candidates, features are made from the bytes in hand, as PUT /images does)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from lookalike import dedup, stack
from lookalike.dedup.grouping import cross_list
from lookalike.dedup.records import Group, Member
from lookalike.index import open_index
from lookalike.index.documents import Doc
from lookalike.index.embedded import EmbeddedIndex
from lookalike.settings import Settings
from lookalike.verify import Verdict, extract, words
from lookalike.verify.store import FeatureStore, SqliteFeatures
from tests.standin import standin_vector


def jpeg(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.convert("RGB").save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def index_of(images: dict[str, bytes], tmp_path) -> tuple[EmbeddedIndex, FeatureStore]:
    index = EmbeddedIndex(tmp_path / "index", "t", "standin", 1280)
    store = SqliteFeatures(tmp_path / "features", "t", 10_000_000)
    docs = []
    for n, (name, data) in enumerate(images.items()):
        width, height = Image.open(io.BytesIO(data)).size
        docs.append(Doc(id=name, vector=standin_vector(data, 1280), model="standin", source=None, width=width,
                        height=height, ingested_at=f"2026-01-01T00:00:{n:02d}"))  # fmt: skip
        store.put(name, extract(data))
    assert index.upsert(docs)[0] == len(docs)
    return index, store


def captioned(img: Image.Image) -> Image.Image:
    """`img` as a meme: white bands above and below, black blocks for the caption's words."""
    meme = Image.new("RGB", (img.width, img.height + 160), "white")
    meme.paste(img, (0, 80))
    draw = ImageDraw.Draw(meme)
    for x in range(30, img.width - 40, 90):
        draw.rectangle((x, 25, x + 60, 55), fill="black")
    return meme


def test_copies_and_parts_group_under_the_best_copy_and_other_shots_stack_apart(photos, tmp_path):
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    meme = captioned(coffee)
    images = {"coffee": photos["coffee"], "meme": jpeg(meme), "crop": jpeg(coffee.crop((150, 60, 400, 300))),
              "left": photos["motorcycle_left"], "right": photos["motorcycle_right"],
              "chelsea": photos["chelsea"]}  # fmt: skip
    index, store = index_of(images, tmp_path)
    groups, stacks = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert len(groups) == 1, groups
    group = groups[0]
    assert group["keep"]["id"] == "coffee"  # the meme's canvas is larger, but it shows no more of the photo
    verdicts = {dup["id"]: dup["verdict"] for dup in group["duplicates"]}
    assert verdicts == {"meme": "copy", "crop": "part"}, group
    assert all(dup["reason"] for dup in group["duplicates"])
    assert [sorted(image["id"] for image in stack["images"]) for stack in stacks] == [["left", "right"]]
    earliest, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10, keep="earliest")
    assert earliest[0]["keep"]["id"] == "coffee"  # ingested first
    assert {dup["id"] for dup in earliest[0]["duplicates"]} == {"meme", "crop"}


def test_the_keeper_shows_the_most_of_the_picture_then_nothing_added(photos, tmp_path):
    """Real photos and their copies: the meme of the full-size photo beats a clean half-size copy (more
    of the picture's pixels); the clean full-size photo beats its meme (equal pixels, nothing added),
    whichever was ingested first."""
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    meme = captioned(coffee)
    small = jpeg(coffee.resize((coffee.width // 2, coffee.height // 2)))
    index, store = index_of({"small": small, "meme": jpeg(meme)}, tmp_path / "a")
    groups, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert [(g["keep"]["id"], [d["id"] for d in g["duplicates"]]) for g in groups] == [("meme", ["small"])]
    index, store = index_of({"meme": jpeg(meme), "small": small, "coffee": photos["coffee"]}, tmp_path / "b")
    groups, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert [(g["keep"]["id"], sorted(d["id"] for d in g["duplicates"])) for g in groups] == [
        ("coffee", ["meme", "small"])
    ]
    assert all(d["verdict"] == "copy" for d in groups[0]["duplicates"]), groups


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
    store = SqliteFeatures(folder, "t", 10_000_000)
    store.drop("nothing")  # a DELETE of an image never verified
    store.close()
    assert not folder.exists()
    store = SqliteFeatures(folder, "t", 10_000_000)
    found, why = store.get("gone", str(tmp_path / "missing.jpg"))
    assert found is None and "cannot be read" in why  # a missing source is a reason, not a crash
    (tmp_path / "cat.jpg").write_bytes(photos["chelsea"])
    made, _ = store.get("cat", str(tmp_path / "cat.jpg"))
    again, _ = SqliteFeatures(folder, "t", 10_000_000).get("cat", None)  # kept: no source needed now
    assert made is not None and again is not None and again.count == made.count
    store.close()


def test_in_an_index_with_region_vectors_a_pasted_photo_is_found_by_its_window(standin, photos, tmp_path):
    """Real ingest (stand-in model server) into a grid2 index: the coffee photo pasted over a quarter
    of a larger rocket photo (the collage has the most pixels, so it is the keeper whatever order
    ingest writes them in). Whole against whole their cosine is under the candidate threshold; the
    collage's window finds the photo, and verification says it is a part of the collage."""

    settings = Settings(ts_url=standin.inference_url, data_dir=tmp_path / "index", regions="grid2", home=tmp_path)
    canvas = Image.open(io.BytesIO(photos["rocket"])).convert("RGB").resize((800, 534))  # more pixels than coffee
    canvas.paste(Image.open(io.BytesIO(photos["coffee"])).convert("RGB").resize((400, 267)), (0, 0))
    chosen = {"collage": jpeg(canvas), "coffee": photos["coffee"], "chelsea": photos["chelsea"]}
    report = stack.ingest(settings, stack.photo_items(chosen, tmp_path / "photos", named=True))
    assert report.indexed == 3
    index, store = open_index(settings, "efficientnet_lite0", 1280), FeatureStore.of(settings)
    whole, _ = dedup.find_verified(index, store, by_regions=False, by_words=False)
    assert whole == []  # the candidates by whole vectors alone miss it
    groups, _ = dedup.find_verified(index, store)
    assert [(g["keep"]["id"], [(d["id"], d["verdict"]) for d in g["duplicates"]]) for g in groups] == [
        ("collage", [("coffee", "part")])]  # fmt: skip
    index.close()
    store.close()


def test_a_photo_pasted_small_into_a_collage_is_found_by_shared_visual_words(photos, tmp_path):
    """The coffee photo pasted over a ninth of a larger rocket photo: whole against whole (stand-in
    vectors, as a whole-image embedding) they are far apart, but they share visual words, so the
    pair is judged and the photo found as a part of the collage."""
    canvas = Image.open(io.BytesIO(photos["rocket"])).convert("RGB").resize((900, 600))
    canvas.paste(Image.open(io.BytesIO(photos["coffee"])).convert("RGB").resize((300, 200)), (560, 360))
    images = {"collage": jpeg(canvas), "coffee": photos["coffee"], "chelsea": photos["chelsea"],
              "astronaut": photos["astronaut"], "camera": photos["china"]}  # fmt: skip
    index, store = index_of(images, tmp_path)
    cosine = float(index.get("collage").vector @ index.get("coffee").vector)
    assert cosine < dedup.CANDIDATE_THRESHOLD
    assert dedup.find_verified(index, store, by_words=False)[0] == []
    groups, _ = dedup.find_verified(index, store)
    assert [(g["keep"]["id"], [(d["id"], d["verdict"]) for d in g["duplicates"]]) for g in groups] == [
        ("collage", [("coffee", "part")])]  # fmt: skip
    box = groups[0]["duplicates"][0]
    assert box["similarity"] == round(cosine, 6)


def test_visual_words_propose_the_collage_and_its_pasted_photo(photos):
    """Shared-word scores over the bundled photos, in 8 vocabularies drawn with 8 seeds. Thirteen
    images make ~640 words, coarse enough that one draw can miss a pair (the end-to-end test above
    runs one draw): the collage's best neighbour is always its host photo, and the collage and the
    photo pasted into it are among each other's three best (either side: de-duplication judges a
    pair proposed by either) in at least 6 draws; no image is its own neighbour."""

    canvas = Image.open(io.BytesIO(photos["astronaut"])).convert("RGB").resize((900, 900))
    canvas.paste(Image.open(io.BytesIO(photos["chelsea"])).convert("RGB").resize((300, 200)), (40, 650))
    images = [jpeg(canvas), photos["chelsea"], *(data for name, data in photos.items() if name != "chelsea")]
    features = [extract(data) for data in images]
    proposed = 0
    for seed in range(8):
        vocabulary = words.Vocabulary.drawn(np.concatenate([found.desc for found in features]), seed=seed)
        near = list(vocabulary.neighbours([vocabulary.bag(found) for found in features], k=3))
        assert near[0][0][0] == 2, near  # the collage's host
        proposed += 1 in [position for position, _ in near[0]] or 0 in [position for position, _ in near[1]]
        assert all(position != n for n, found in enumerate(near) for position, _ in found)
    assert proposed >= 6
    assert vocabulary.bag(None).size == 0 and list(vocabulary.neighbours([np.empty(0, np.int32)] * 2)) == [[], []]


def test_the_words_a_collages_host_lacks_propose_the_photo_pasted_into_it(photos):
    """A collage whose word neighbours are all its host and the host's copies (k 5, four copies):
    the photo pasted into it is not among them, and asking again with the words the best neighbour
    lacks (its rest) proposes that photo, one more candidate, in at least 6 of 8 vocabularies
    (measured: 7). Without the rest the collage has its k neighbours and no more."""
    host = Image.open(io.BytesIO(photos["astronaut"])).convert("RGB").resize((900, 900))
    canvas = host.copy()
    canvas.paste(Image.open(io.BytesIO(photos["chelsea"])).convert("RGB").resize((300, 200)), (40, 650))
    copies = [host.resize((700, 700)), ImageEnhance.Color(host).enhance(0.3),
              ImageEnhance.Brightness(host).enhance(1.2), host.resize((600, 600))]  # fmt: skip
    others = [data for name, data in photos.items() if name not in ("chelsea", "astronaut")]
    features = [extract(data) for data in [jpeg(canvas), jpeg(host), *map(jpeg, copies), photos["chelsea"], *others]]
    pasted = 6
    proposed = 0
    for seed in range(8):
        vocabulary = words.Vocabulary.drawn(np.concatenate([found.desc for found in features]), seed=seed)
        bags = [vocabulary.bag(found) for found in features]
        near = next(vocabulary.neighbours(bags, k=5, rest_score=None))
        assert sorted(position for position, _ in near) == [1, 2, 3, 4, 5]
        with_rest = next(vocabulary.neighbours(bags, k=5))
        assert with_rest[:5] == near and len(with_rest) <= 6
        proposed += [position for position, _ in with_rest[5:]] == [pasted]
    assert proposed >= 6


class RecordedVerdicts:
    """A stand-in for the judge's memory (the rules under test read verdicts only): what `a` is to `b`."""

    def __init__(self, verdicts: dict[tuple[str, str], Verdict]) -> None:
        self.verdicts = verdicts

    def judge(self, a: str, _a_source, b: str, _b_source, _cosine, directed: bool = False) -> Verdict:
        return self.verdicts.get((a, b), Verdict("different", "nothing in common"))

    def either_way(self, a: str, b: str) -> list[Verdict]:
        return [self.verdicts[pair] for pair in [(a, b), (b, a)] if pair in self.verdicts]

    def same_scene(self, a: str, b: str) -> bool:
        return any(verdict.is_same_scene for verdict in self.either_way(a, b))

    def linked(self, a: str, b: str) -> bool:
        return any(verdict.joins for verdict in self.either_way(a, b))


def test_a_copy_vouches_for_an_image_the_keeper_could_not_align(photos, tmp_path):
    """`through_copy` over recorded verdicts (a stand-in for the judge's memory, the rule under
    test): an image whose keypoints agree with the keeper but whose pixels did not is grouped when
    it was verified a copy of one of the keeper's copies - only by a sure copy, and never through
    a part."""

    keep, member, doc = (Doc(id=name, vector=np.ones(4, np.float32) / 2, model="m") for name in ("k", "m", "d"))
    sure = Verdict("copy", "the same picture", 80, 0.9, None, (0.2, 0.0, 0.8, 1.0))

    def recorded(verdict: Verdict) -> RecordedVerdicts:
        return RecordedVerdicts({("d", "m"): verdict})

    never = lambda a, b: False  # noqa: E731
    entry = dedup.through_copy(doc, keep, [Member(member, 1.0, sure)], recorded(sure), never)
    assert entry is not None and entry.verdict.verdict == "copy" and entry.verdict.box == sure.box
    assert "judged against m, a copy of k" in entry.verdict.reason
    unsure = Verdict("copy", "the same picture", 40, 0.65)
    assert dedup.through_copy(doc, keep, [Member(member, 1.0, sure)], recorded(unsure), never) is None
    part = Verdict("part", "a crop", 40, 0.95, None, (0.1, 0.1, 0.3, 0.3))
    assert dedup.through_copy(doc, keep, [Member(member, 1.0, part)], recorded(sure), never) is None
    assert dedup.through_copy(doc, keep, [Member(member, 1.0, sure)], recorded(sure), lambda a, b: True) is None
    # two more of the keeper's sure copies judged it another shot of the scene: one copy does not carry it
    others = [Doc(id=name, vector=np.ones(4, np.float32) / 2, model="m") for name in ("o1", "o2")]
    scene = Verdict("same_scene", "another shot", 50, 0.45)
    seen = RecordedVerdicts({("d", "m"): sure, ("d", "o1"): scene, ("d", "o2"): scene})
    members = [Member(member, 1.0, sure), *(Member(other, 1.0, sure) for other in others)]
    assert dedup.through_copy(doc, keep, members, seen, never) is None
    assert dedup.through_copy(doc, keep, members[:2], seen, never) is not None  # one against one: carried


def test_a_collage_holds_a_letterboxed_keepers_photo_not_its_border():
    someone = Doc(id="c", vector=np.ones(4, np.float32) / 2, model="m")
    copies = [Member(someone, 1.0, Verdict("copy", "the same picture", 80, 0.9, None, box)) for box in
              [(0.3, 0.0, 0.7, 1.0), (0.31, 0.0, 0.69, 1.0), (0.1, 0.0, 0.9, 1.0)]]  # fmt: skip
    photo = dedup.content(copies)
    assert photo == pytest.approx((0.3, 0.0, 0.7, 1.0))  # the median: a tilted copy's corners reach past it
    assert dedup.holds((0.3, 0.0, 0.7, 1.0), photo) and not dedup.holds((0.3, 0.0, 0.7, 1.0))
    assert not dedup.holds((0.3, 0.0, 0.5, 1.0), photo) and dedup.holds(None, photo)
    assert dedup.content([]) == (0.0, 0.0, 1.0, 1.0)


def collage_of(photos, host: str, photo: str, size: tuple[int, int], width: int) -> Image.Image:
    """`photo` pasted at `width` pixels wide into `host` resized to `size`."""
    canvas = Image.open(io.BytesIO(photos[host])).convert("RGB").resize(size)
    small = Image.open(io.BytesIO(photos[photo])).convert("RGB")
    canvas.paste(small.resize((width, width * small.height // small.width)), (size[0] // 10, size[1] // 10))
    return canvas


def test_a_collage_that_only_holds_another_photo_is_not_its_keeper(photos, tmp_path):
    """The largest picture is a collage holding the coffee photo, and nothing of the rocket it was
    pasted into is indexed: the coffee photo's copies are all parts of it, so it would keep them
    (and, in a real run, draw the rocket's copies in as its own copies). The coffee photo is kept;
    the collage is listed as the picture that holds it."""
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    images = {"collage": jpeg(collage_of(photos, "rocket", "coffee", (1600, 1067), 640)),
              "coffee": photos["coffee"], "mirrored": jpeg(coffee.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
              "chelsea": photos["chelsea"]}  # fmt: skip
    index, store = index_of(images, tmp_path)
    groups, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert [(g["keep"]["id"], {d["id"]: d["verdict"] for d in g["duplicates"]}) for g in groups] == [
        ("coffee", {"mirrored": "copy", "collage": "part"})]  # fmt: skip


def test_a_collage_keeper_keeps_its_hosts_copies_and_not_the_pasted_photos(photos, tmp_path):
    """The largest picture is a collage: the rocket, with the coffee photo pasted in. A smaller copy
    of the rocket is its copy; the coffee photo and its mirror are parts of it, but the rocket's
    copy does not hold them, so they are a group of their own (the collage listed there too, as
    the picture that holds them) - never the rocket's copy grouped with the coffee photo."""
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    rocket = Image.open(io.BytesIO(photos["rocket"])).convert("RGB")
    images = {"collage": jpeg(collage_of(photos, "rocket", "coffee", (1600, 1067), 640)),
              "rocket": jpeg(rocket.resize((1200, 800))), "coffee": photos["coffee"],
              "mirrored": jpeg(coffee.transpose(Image.Transpose.FLIP_LEFT_RIGHT))}  # fmt: skip
    index, store = index_of(images, tmp_path)
    groups, _ = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    members = {g["keep"]["id"]: {d["id"] for d in g["duplicates"]} for g in groups}
    assert members == {"collage": {"rocket"}, "coffee": {"mirrored", "collage"}}, groups


def test_a_collage_joins_a_group_by_holding_one_of_its_sure_copies():
    """`holds_copy` over recorded verdicts (a stand-in for the judge's memory, the rule under test):
    an image that holds a keeper's sure, whole copy (a collage and the plain photo, where the keeper
    is the photo tilted on a large canvas) joins, placed where that copy lies in the keeper; a crop
    of the keeper is no witness (another shot of the scene holds it too), an image that is only a
    copy of the witness does not join this way, and neither does one marked apart from it."""

    keep, plain, resized, crop, doc = (Doc(id=name, vector=np.ones(4, np.float32) / 2, model="m")
                                       for name in ("k", "plain", "resized", "crop", "d"))  # fmt: skip
    members = [Member(plain, 1.0, Verdict("copy", "the same picture", 80, 0.9, None, (0.1, 0.1, 0.9, 0.9))),
               Member(resized, 1.0, Verdict("copy", "the same picture", 70, 0.85, None, (0.12, 0.1, 0.9, 0.92))),
               Member(crop, 1.0, Verdict("copy", "the same picture", 80, 0.9, None, (0.1, 0.1, 0.5, 0.5)))]  # fmt: skip
    holds_it = Verdict("part", "the second is part of the first", 60, 0.8, None, (0.0, 0.0, 1.0, 1.0))

    def recorded(verdict: Verdict, witness: str) -> RecordedVerdicts:
        return RecordedVerdicts({("d", witness): verdict})  # judged while candidates were judged

    never = lambda a, b: False  # noqa: E731
    found = dedup.holds_copy(doc, keep, members, recorded(holds_it, "plain"), never)
    assert found is not None and found.verdict.verdict == "part" and found.verdict.box == members[0].verdict.box
    assert "judged against plain, a copy of k" in found.verdict.reason
    assert dedup.holds_copy(doc, keep, members, recorded(holds_it, "crop"), never) is None
    assert dedup.holds_copy(doc, keep, members, recorded(members[0].verdict, "plain"), never) is None
    assert dedup.holds_copy(doc, keep, members, recorded(holds_it, "plain"), lambda a, b: True) is None


def test_a_window_of_one_shot_joins_that_shot_not_the_other_it_also_fits(photos, tmp_path):
    """Real photos: a window of the left motorcycle shot, where the stereo pair barely differs,
    verifies as a part of both shots (its aligned pixels correlate 0.89 with the left, 0.64 with
    the right). The right shot, ingested first, forms its group first; the window still goes with
    the left shot, and the two shots stay a stack."""
    left = Image.open(io.BytesIO(photos["motorcycle_left"])).convert("RGB")
    images = {"right": photos["motorcycle_right"], "left": photos["motorcycle_left"],
              "window": jpeg(left.crop((276, 180, 616, 409))), "cat": photos["chelsea"]}  # fmt: skip
    index, store = index_of(images, tmp_path)
    groups, stacks = dedup.find_verified(index, store, threshold=-1.0, neighbours=10)
    assert [(g["keep"]["id"], {d["id"]: d["verdict"] for d in g["duplicates"]}) for g in groups] == [
        ("left", {"window": "part"})]  # fmt: skip
    assert [sorted(image["id"] for image in stack["images"]) for stack in stacks] == [["left", "right"]]


def test_a_part_goes_to_the_shot_whose_pixels_it_matches_better():
    """`other_shot` over recorded verdicts: a part of the keeper that is also a part of another shot of
    the scene, with better aligned pixels, is a stray; one that matches the keeper better stays; a
    copy of the keeper stays (a collage of one shot pasted into the other is a copy of its host); a
    part is a stray beside a copy of the other shot only when its own pixels matched the keeper's
    just within the agreeing keypoints (a screenshot of one shot, seed 16: 0.54), not when they
    match well (that collage, a part of the other shot it holds);
    an image marked apart from the shot is not compared with it; with no other shot, all stay."""
    doc = {name: Doc(id=name, vector=np.ones(4, np.float32) / 2, model="m") for name in ("w", "c", "s", "s2")}
    part = lambda corr: Verdict("part", "the first is part of the other", 60, corr, None, (0.2, 0.2, 0.6, 0.6))  # noqa: E731
    copy = Verdict("copy", "the same picture", 200, 0.99, None, (0.0, 0.0, 1.0, 1.0))
    judge = RecordedVerdicts({("w", "s"): part(0.89), ("c", "s"): part(0.95), ("w", "s2"): part(0.5)})
    window, collage = Member(doc["w"], 0.8, part(0.64)), Member(doc["c"], 0.8, copy)
    never = lambda a, b: False  # noqa: E731
    kept, strays = dedup.other_shot([window, collage], [doc["s"]], judge, never)
    assert [m.doc.id for m in kept] == ["c"] and [m.doc.id for m in strays] == ["w"]
    assert dedup.other_shot([window], [doc["s2"]], judge, never) == ([window], [])
    assert dedup.other_shot([window], [doc["s"]], judge, lambda a, b: {a, b} == {"w", "s"}) == ([window], [])
    assert dedup.other_shot([window], [], judge, never) == ([window], [])
    framed = Verdict("copy", "the same picture in a frame", 96, 0.9, None, (0.0, 0.0, 1.0, 1.0))
    judge = RecordedVerdicts({("w", "s"): framed, ("c", "s"): framed})
    weak, held = Member(doc["w"], 0.8, part(0.54)), Member(doc["c"], 0.8, part(0.95))
    assert dedup.other_shot([weak, held], [doc["s"]], judge, never) == ([held], [weak])


def test_an_image_is_not_listed_with_the_other_shot_of_a_scene_it_holds_less_well():
    """`cross_list` over recorded verdicts: a collage holding one shot of a room (dedup eval, copy seeds
    12 and 14) also holds, in the same window, the other shot, as a part with poorer pixels (0.61
    against 0.96). It is listed with the shot it holds, not with the other one; with no shot judged
    another of the scene, it is listed with both."""
    doc = {name: Doc(id=name, vector=np.ones(4, np.float32) / 2, model="m") for name in ("a", "b", "a2", "b2", "c")}
    whole = (0.0, 0.0, 1.0, 1.0)
    holds = lambda corr: Verdict("part", "the second is part of the other", 50, corr, None, whole)  # noqa: E731
    copy = Verdict("copy", "the same picture", 200, 0.99, None, whole)
    verdicts = {("c", "a"): holds(0.61), ("c", "b"): holds(0.96), ("a", "b"): Verdict("same_scene", "parallax")}

    def made() -> list[Group]:
        return [Group(doc["a"], [Member(doc["a2"], 0.9, copy)]),
                Group(doc["b"], [Member(doc["b2"], 0.9, copy), Member(doc["c"], 0.5, holds(0.96))])]  # fmt: skip

    never = lambda a, b: False  # noqa: E731
    groups = made()
    cross_list(groups, RecordedVerdicts(verdicts), never)
    assert [[m.doc.id for m in g.members] for g in groups] == [["a2"], ["b2", "c"]]
    groups = made()
    cross_list(groups, RecordedVerdicts({key: v for key, v in verdicts.items() if key != ("a", "b")}), never)
    assert [[m.doc.id for m in g.members] for g in groups] == [["a2", "c"], ["b2", "c"]]


def test_an_image_listed_only_through_a_witness_gives_way_to_the_shot_that_matches_it_better():
    """`cross_list` over recorded verdicts (dedup eval, copy seed 17): a collage holding one shot of a
    room is a framed copy of that shot (0.81) and, in the same window, holds a recoloured copy of the
    other shot as a part (16 keypoints, 0.61): by that witness alone (`holds_copy`) it is not listed
    with the other shot. Held with poorer pixels than its own shot's, it would be; and where its own
    shot matches it worse than the witness does, it is listed with both."""
    doc = {name: Doc(id=name, vector=np.ones(4, np.float32) / 2, model="m") for name in ("a", "a2", "b", "c")}
    whole = (0.0, 0.0, 1.0, 1.0)
    copy = lambda corr: Verdict("copy", "the same picture in a frame", 96, corr, None, whole)  # noqa: E731
    held = Verdict("part", "the second is part of the first", 16, 0.61, None, whole)

    def listed(own: float) -> list[list[str]]:
        groups = [
            Group(doc["a"], [Member(doc["a2"], 0.9, copy(0.95))]),
            Group(doc["b"], [Member(doc["c"], 0.5, copy(own))]),
        ]
        verdicts = {("c", "a2"): held, ("c", "b"): copy(own), ("a", "b"): Verdict("same_scene", "parallax")}
        cross_list(groups, RecordedVerdicts(verdicts), lambda a, b: False)
        return [[m.doc.id for m in g.members] for g in groups]

    assert listed(0.81) == [["a2"], ["c"]]
    assert listed(0.55) == [["a2", "c"], ["c"]]


def test_images_without_features_are_counted_and_named_not_passed_over(photos, tmp_path):
    """A verified run whose images have no stored features and no readable source says how many and
    which (they were never judged), rather than reporting no groups as if there were none."""
    index, store = index_of({"coffee": photos["coffee"], "chelsea": photos["chelsea"]}, tmp_path)
    gone = tmp_path / "gone.jpg"  # its features were never stored, and its source is not there any more
    doc = Doc(id="gone", vector=standin_vector(photos["coffee"], 1280), model="standin", source=str(gone))
    assert index.upsert([doc])[0] == 1
    stats: dict = {}
    dedup.find_verified(index, store, threshold=-1.0, neighbours=10, stats=stats)
    assert set(stats["missing"]) == {"gone"} and "cannot be read" in stats["missing"]["gone"]
    found = dedup.Found([], record={"verified": True, "threshold": -1.0}, missing=stats["missing"])
    lines = dedup.save(found, tmp_path / "out" / "duplicates.json")
    assert lines[-1].startswith("1 images were not judged, having no features: gone (its source cannot be read")
