"""`lookalike eval` end to end over the stand-in model server (plumbing, not relevance)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lookalike.cli.main import main
from lookalike.copies import ALL_KINDS, copies
from lookalike.relevance.dedup_eval import collection, group_pairs, pair_scores, scene_pairs, true_pairs
from lookalike.relevance.evaluate import MODES, set_similarity

REPO = Path(__file__).resolve().parents[2]


def test_eval_on_a_labelled_folder_and_near_duplicates(standin, photos, interiors, tmp_path):
    subjects = dict(list(photos.items())[:8])
    for cls, images in (("subjects", subjects), ("interiors", dict(list(interiors.items())[:6]))):
        (tmp_path / "set" / cls).mkdir(parents=True)
        for name, data in images.items():
            (tmp_path / "set" / cls / f"{name}.jpg").write_bytes(data)
    out = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "lookalike", "eval", "--ts-url", standin.inference_url, "--models",
           "efficientnet_lite0", "--folder", str(tmp_path / "set"), "--near-duplicates", "--seeds", "1,2",
           "--kinds", "near-duplicate",
           "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Class retrieval" in done.stdout and "Copies" in done.stdout
    report = json.loads(out.read_text())
    assert report["images"] == len(subjects) + 6
    classes = report["classes"]["efficientnet_lite0"]
    assert set(classes) == {"overall", "subjects", "interiors"} and classes["interiors"]["queries"] == 6
    copies = report["near_duplicates"]["efficientnet_lite0"]
    assert set(copies) == {f"near-duplicate {run}" for run in ("seed 1", "seed 2", "mean")}
    assert all(0 <= row["recall@1"] <= 1 for row in copies.values())


def test_eval_of_an_empty_folder_is_a_clear_error(standin, tmp_path, capsys):
    assert main(["eval", "--ts-url", standin.inference_url, "--folder", str(tmp_path)]) == 2
    assert "no images in class folders" in capsys.readouterr().err


def test_each_kind_of_copy_is_seeded_and_changes_the_picture(photos):
    import io

    import numpy as np
    from PIL import Image

    images = [photos[name] for name in ("coffee", "chelsea", "rocket")]
    for kind in ALL_KINDS:
        first = copies(images, kind, np.random.default_rng(3))
        assert first == copies(images, kind, np.random.default_rng(3)), kind  # same seed, same copies
        assert first != copies(images, kind, np.random.default_rng(4)), kind
        for original, copy in zip(images, first, strict=True):
            assert copy != original and Image.open(io.BytesIO(copy)).format == "JPEG", kind


def test_region_scoring_takes_the_best_pair_of_vectors():
    import numpy as np

    e = np.eye(4, dtype=np.float32)
    copy = [np.stack([e[0], e[1]]), np.stack([e[2], e[3]])]  # whole, then one region
    orig = [np.stack([e[1], e[2]]), np.stack([e[3], e[0]])]
    assert set_similarity(copy, orig).tolist() == [[1, 1], [1, 1]]
    assert MODES["whole"](copy, orig).tolist() == [[0, 0], [0, 0]]
    assert MODES["indexed regions"](copy, orig).tolist() == [[0, 1], [1, 0]]  # copy 0's whole is orig 1's region
    assert MODES["reversed"](copy, orig).tolist() == [[1, 0], [0, 1]]


def test_eval_with_region_vectors_over_the_standin(standin, tmp_path):
    out = tmp_path / "eval.json"
    cmd = ["eval", "--ts-url", standin.inference_url, "--models",
           "efficientnet_lite0", "--regions", "none,grid2", "--seeds", "0", "--kinds", "heavy-crop", "--photos", "8",
           "--out", str(out)]  # fmt: skip
    assert main(cmd) == 0  # in-process: the command line itself is run by the test above
    rows = json.loads(out.read_text())["near_duplicates"]
    assert set(rows["efficientnet_lite0 none"]) == {"heavy-crop [whole]"}
    modes = ("whole", "indexed regions", "+query regions", "reversed")
    assert set(rows["efficientnet_lite0 grid2"]) == {f"heavy-crop [{mode}]" for mode in modes}


def test_dedup_pairs_count_what_a_group_claims_against_what_the_pictures_show(photos):
    """A collage shows two photos; a group predicts all its pairs; recall is also split per kind."""
    import numpy as np

    images = [photos[name] for name in ("coffee", "chelsea", "rocket")]
    items = collection(images, ["heavy-crop", "pasted"], seed=0)
    assert [item[0] for item in items[:4]] == ["original-0", "original-1", "original-2", "heavy-crop-0"]
    shows = {doc_id: originals for doc_id, _, originals in items}
    assert all(len(shows[f"pasted-{i}"]) == 2 and i in shows[f"pasted-{i}"] for i in range(3))
    truth = true_pairs(items)
    host = next(iter(shows["pasted-0"] - {0}))
    assert ("original-0", "pasted-0") in truth and (f"original-{host}", "pasted-0") in truth
    assert ("heavy-crop-0", "original-0") in truth and ("heavy-crop-1", "original-0") not in truth
    groups = [{"keep": {"id": "original-0"}, "duplicates": [{"id": "heavy-crop-0"}, {"id": "heavy-crop-1"}]}]
    found = group_pairs(groups)
    assert found == {("heavy-crop-0", "original-0"), ("heavy-crop-1", "original-0"), ("heavy-crop-0", "heavy-crop-1")}
    scores = pair_scores(found, truth, ["heavy-crop", "pasted"])
    assert scores["precision"] == 1 / 3 and scores["recall"] == 1 / len(truth)
    assert scores["recall_by_kind"]["pasted"] == 0 and 0 < scores["recall_by_kind"]["heavy-crop"] < 1
    precision, recall = scores["precision"], scores["recall"]
    assert np.isclose(scores["f1"], 2 * precision * recall / (precision + recall))


def test_eval_dedup_over_the_standin(standin, tmp_path, capsys):
    out = tmp_path / "eval.json"
    cmd = ["eval", "--ts-url", standin.inference_url, "--models", "efficientnet_lite0", "--dedup", "--regions",
           "none,grid2", "--seeds", "0", "--kinds", "near-duplicate", "--photos", "8", "--thresholds", "0.5,0.99",
           "--out", str(out)]  # fmt: skip
    assert main(cmd) == 0
    assert "De-duplication" in capsys.readouterr().out
    results = json.loads(out.read_text())["dedup"]["efficientnet_lite0"]
    assert set(results) == {"none", "grid2"}
    assert "near_duplicates" not in json.loads(out.read_text())  # not asked for
    for by_threshold in results.values():
        assert set(by_threshold) == {"0.5", "0.99"}
        loose, strict = by_threshold["0.5"], by_threshold["0.99"]
        assert loose["pairs_found"] >= strict["pairs_found"] and loose["recall"] >= strict["recall"]
        assert all(0 <= loose[key] <= 1 for key in ("precision", "recall", "f1"))


def test_eval_reranks_copies_with_the_verifier_when_asked(standin, tmp_path):
    out = tmp_path / "eval.json"
    cmd = ["eval", "--ts-url", standin.inference_url, "--models", "efficientnet_lite0", "--near-duplicates",
           "--kinds", "heavy-crop", "--seeds", "0", "--photos", "6", "--verify", "5", "--out", str(out)]  # fmt: skip
    assert main(cmd) == 0
    rows = json.loads(out.read_text())["near_duplicates"]["efficientnet_lite0"]
    assert set(rows) == {"heavy-crop seed 0", "heavy-crop seed 0 [verified]"}
    # the verifier only reorders the 5 nearest: recall@10 cannot change, recall@1 may only move within them
    assert rows["heavy-crop seed 0 [verified]"]["recall@10"] == rows["heavy-crop seed 0"]["recall@10"]


def test_eval_dedup_with_verification_over_the_standin(standin, tmp_path):
    out = tmp_path / "eval.json"
    cmd = ["eval", "--ts-url", standin.inference_url, "--models", "efficientnet_lite0", "--dedup", "--verify", "20",
           "--seeds", "0", "--kinds", "heavy-crop", "--photos", "4", "--thresholds", "-1",
           "--out", str(out)]  # fmt: skip
    assert main(cmd) == 0
    scores = json.loads(out.read_text())["dedup"]["efficientnet_lite0"]["none verified"]["-1.0"]
    assert scores["true_pairs"] == 4 and 0 <= scores["precision"] <= 1 and scores["recall"] > 0, scores


def test_same_scene_pairs_are_negatives_and_precision_is_reported_per_kind():
    """Photos 0 and 1 show one scene: neither they nor their copies are a true pair, and grouping
    them is counted; precision per kind counts the pairs with a copy of that kind on one side."""

    items = [("original-0", b"", frozenset([0])), ("original-1", b"", frozenset([1])),
             ("original-2", b"", frozenset([2])), ("rotated-0", b"", frozenset([0])),
             ("rotated-1", b"", frozenset([1]))]  # fmt: skip
    truth, scenes = true_pairs(items), scene_pairs(items, [(0, 1)])
    assert scenes == {("original-0", "original-1"), ("original-0", "rotated-1"), ("original-1", "rotated-0"),
                      ("rotated-0", "rotated-1")}  # fmt: skip
    assert not scenes & truth
    found = {("original-0", "rotated-0"), ("original-1", "rotated-0")}  # one right, one a same-scene pair
    scores = pair_scores(found, truth, ["rotated"], scenes)
    assert scores["scene_pairs_grouped"] == 1 and scores["scene_pairs"] == 4
    assert scores["precision_by_kind"]["rotated"] == 0.5 and scores["recall_by_kind"]["rotated"] == 0.5


def test_near_duplicates_run_beside_dedup_when_asked(standin, tmp_path):
    """--near-duplicates is not dropped when --dedup (or --regions) is given too."""
    out = tmp_path / "eval.json"
    cmd = ["eval", "--ts-url", standin.inference_url, "--models", "efficientnet_lite0", "--dedup",
           "--near-duplicates", "--seeds", "0", "--kinds", "heavy-crop", "--photos", "4", "--thresholds", "0.5",
           "--out", str(out)]  # fmt: skip
    assert main(cmd) == 0
    report = json.loads(out.read_text())
    assert set(report["dedup"]["efficientnet_lite0"]) == {"none"}
    assert set(report["near_duplicates"]["efficientnet_lite0"]) == {"heavy-crop seed 0"}
