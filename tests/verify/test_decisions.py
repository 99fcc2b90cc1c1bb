"""Decisions on duplicate groups: how they change a group (fast), and that they are kept in the index
and honoured by a later run after a restart, on both backends."""

from __future__ import annotations

import io
import uuid

import pytest
from PIL import Image

from lookalike import dedup
from lookalike.index import open_index
from lookalike.index.documents import Doc
from lookalike.review.decisions import Decision, apply_all, key_of
from lookalike.review.store import open_review
from lookalike.settings import Settings
from lookalike.verify import extract
from lookalike.verify.store import FeatureStore
from tests.backends import BACKENDS, drop_indices, node_url, opensearch_settings
from tests.standin import standin_vector
from tests.verify.test_verified_dedup import jpeg


def group(keep: str, *duplicates: str) -> dict:
    copies = [{"id": dup, "source": f"{dup}.jpg", "similarity": 0.9, "verdict": "copy"} for dup in duplicates]
    return {"keep": {"id": keep, "source": f"{keep}.jpg"}, "duplicates": copies}


def test_a_chosen_keeper_leads_its_group_and_the_group_is_decided():
    [made] = apply_all([group("a", "b", "c")], [Decision("keep", ("a", "b", "c"), keep="b")])
    assert made["keep"]["id"] == "b" and [dup["id"] for dup in made["duplicates"]] == ["a", "c"]
    assert made["duplicates"][0]["similarity"] == 0.9  # the old keeper's cosine to the new one
    assert made["decision"]["decision"] == "keep" and made["key"] == key_of(["a", "b", "c"])


def test_not_duplicates_takes_images_out_and_a_newcomer_reopens_a_resolved_group():
    assert apply_all([group("a", "b")], [Decision("not_duplicates", ("a", "b"))]) == []
    [rest] = apply_all([group("a", "b", "c")], [Decision("not_duplicates", ("a", "b"))])
    assert [dup["id"] for dup in rest["duplicates"]] == ["c"] and "decision" not in rest
    [done] = apply_all([group("a", "b")], [Decision("resolved", ("a", "b"))])
    assert done["decision"]["decision"] == "resolved"
    [again] = apply_all([group("a", "b", "new")], [Decision("resolved", ("a", "b"))])
    assert "decision" not in again  # the decision covered a and b, not the image that joined since


def test_a_later_decision_on_the_same_images_wins_and_bad_ones_say_why():
    first = Decision("keep", ("a", "b"), keep="a", at="2026-01-01T00:00:00+00:00")
    later = Decision("not_duplicates", ("b", "a"), at="2026-01-02T00:00:00+00:00")
    assert first.key == later.key  # one decision per set of images: stores replace by key
    assert apply_all([group("a", "b")], [later, first]) == []  # applied oldest first
    for bad, why in ((lambda: Decision("keep", ("a", "b")), "names the kept image"),
                     (lambda: Decision("keep", ("a", "b"), keep="z"), "not one of ids"),
                     (lambda: Decision("merge", ("a", "b")), "must be one of"),
                     (lambda: Decision("resolved", ("a", "a")), "at least two")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            bad()


@pytest.fixture(params=BACKENDS)
def settings(request, tmp_path):
    if request.param == "embedded":
        yield Settings(data_dir=tmp_path / "index", home=tmp_path)
        return
    url = node_url(request, request.param)
    made = opensearch_settings(url, f"dec-{uuid.uuid4().hex[:8]}", home=tmp_path)
    yield made
    drop_indices(url, made.alias)


def test_decisions_survive_a_rerun_and_a_restart(settings, photos):
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    chelsea = Image.open(io.BytesIO(photos["chelsea"])).convert("RGB")
    images = {"coffee": photos["coffee"], "coffee-small": jpeg(coffee.resize((300, 200))),
              "coffee-crop": jpeg(coffee.crop((100, 50, 500, 350))), "chelsea": photos["chelsea"],
              "chelsea-copy": jpeg(chelsea.resize((226, 150)))}  # fmt: skip
    index, store = open_index(settings, "standin", 1280), FeatureStore.of(settings)
    docs = []
    for n, (name, data) in enumerate(images.items()):
        width, height = Image.open(io.BytesIO(data)).size
        docs.append(Doc(id=name, vector=standin_vector(data, 1280), model="standin", width=width, height=height,
                        ingested_at=f"2026-01-01T00:00:{n:02d}"))  # fmt: skip
        store.put(name, extract(data))
    assert index.upsert(docs)[0] == len(docs)

    def run() -> list[dict]:
        review = open_review(settings)
        groups, stacks = dedup.find_verified(index, store, threshold=-1.0, decisions=review.decisions())
        review.save_run({"at": "now"}, groups, stacks)
        review.close()
        return groups

    first = {g["keep"]["id"]: sorted(d["id"] for d in g["duplicates"]) for g in run()}
    assert first == {"coffee": ["coffee-crop", "coffee-small"], "chelsea": ["chelsea-copy"]}, first
    review = open_review(settings)
    review.record([Decision("keep", ("coffee", "coffee-small", "coffee-crop"), keep="coffee-small"),
                   Decision("not_duplicates", ("chelsea", "chelsea-copy"))])  # fmt: skip
    review.close()
    index.close()
    store.close()

    index, store = open_index(settings, "standin", 1280), FeatureStore.of(settings)  # a restart
    again = run()
    assert [(g["keep"]["id"], g["decision"]["decision"]) for g in again] == [("coffee-small", "keep")]
    assert sorted(d["id"] for d in again[0]["duplicates"]) == ["coffee", "coffee-crop"]
    review = open_review(settings)
    assert [g["keep"]["id"] for g in review.groups()] == ["coffee-small"]  # the run kept for the API
    assert {d.decision for d in review.decisions()} == {"keep", "not_duplicates"}
    review.close()
    index.close()
    store.close()
