"""`lookalike eval --verifier`: the pairs it judges and how a threshold is chosen, on four real
photos (the stereo motorcycle pair: another shot of one scene) and one seed; real SIFT, no server.
The full run (both halves, every threshold) takes ~4 minutes: its figures are in docs/relevance.md.
The tests on real pairs are in the slow tier (~7 s of SIFT and sweeps the fast tier's minute has
no room for); the choice itself is tested fast, on made-up scores."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from lookalike.copies import ALL_KINDS
from lookalike.relevance import verifier
from lookalike.verify import verdict

NAMES = ("motorcycle_left", "motorcycle_right", "chelsea", "coffee")


def row(recall: float, precision: float = 1.0, scene: int = 0) -> dict:
    return {"recall": recall, "precision": precision, "scene_joined": scene}


def test_the_most_recall_is_chosen_among_values_that_join_no_other_shot_and_keep_precision():
    tried = {10: row(0.97, scene=1), 12: row(0.95, precision=0.98), 15: row(0.93), 18: row(0.94), 22: row(0.90)}
    assert verifier.picked(15, tried)["chosen"] == 18
    assert verifier.picked(15, {**tried, 18: row(0.93)})["chosen"] == 15  # a tie keeps the default
    assert verifier.picked(15, {12: row(0.9), 15: row(0.8), 22: row(0.9)})["chosen"] == 12  # else the nearer
    assert verifier.picked(15, {10: row(0.99, scene=2), 15: row(0.9, scene=1)})["chosen"] == 15  # none allowed


@pytest.fixture(scope="module")
def judged_pairs(photos) -> list[verifier.Pair]:
    return verifier.pairs({name: photos[name] for name in NAMES}, [0])


@pytest.mark.slow
def test_each_copy_should_join_its_photo_and_other_shots_of_a_scene_must_not(judged_pairs):
    joins = [pair for pair in judged_pairs if pair.joins]
    assert {pair.kind for pair in joins} == set(ALL_KINDS)
    assert len(joins) == len(NAMES) * len(ALL_KINDS) + len(NAMES)  # a collage joins its photo and its host
    scenes = [pair for pair in judged_pairs if pair.kind == "scene"]
    # the two shots both ways, and each copy of one against the other (a collage whose host is the
    # other shot joins it instead)
    assert 2 + 2 * (len(ALL_KINDS) - 1) <= len(scenes) <= 2 + 2 * len(ALL_KINDS)
    assert all(not pair.joins for pair in judged_pairs if pair.kind in ("scene", "other"))


@pytest.mark.slow
def test_a_threshold_is_chosen_for_recall_only_where_it_joins_no_other_shot_and_a_tie_keeps_the_default(
    judged_pairs, monkeypatch
):
    defaults = verdict.MIN_INLIERS, verdict.LEAST_CORRELATION
    monkeypatch.setattr(verifier, "GRID", {"MIN_INLIERS": (1, 15, 40), "LEAST_CORRELATION": (0.1, 0.2, 0.3)})
    with ThreadPoolExecutor(2) as pool:
        reach = verifier.in_reach(judged_pairs, pool)
        chosen = verifier.choose(reach, pool)
    inliers = chosen["MIN_INLIERS"]
    assert inliers["tried"][40]["recall"] < inliers["tried"][15]["recall"]  # the sweep moves what it should
    fine = [value for value, row in inliers["tried"].items() if verifier.allowed(row)]
    if fine:
        assert inliers["chosen"] in fine
        assert inliers["tried"][inliers["chosen"]]["recall"] == max(inliers["tried"][v]["recall"] for v in fine)
    else:  # here a crop of one stereo view is a `part` of the other at every value: the default stays
        assert inliers["chosen"] == defaults[0]
    assert inliers["tried"][1]["joined"] >= inliers["tried"][15]["joined"]
    least = chosen["LEAST_CORRELATION"]
    if len({row["recall"] for row in least["tried"].values()}) == 1:
        assert least["chosen"] == verdict.LEAST_CORRELATION
    assert defaults == (verdict.MIN_INLIERS, verdict.LEAST_CORRELATION)  # the module's values are back
    assert len(reach) < len(judged_pairs)  # pairs the screen stops are judged once, not per value


def test_thresholds_are_set_inside_and_restored_after_an_error():
    default = verdict.MIN_INLIERS
    with pytest.raises(RuntimeError), verifier.thresholds({"MIN_INLIERS": 3}):
        assert verdict.MIN_INLIERS == 3
        raise RuntimeError
    assert default == verdict.MIN_INLIERS
