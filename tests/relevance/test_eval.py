"""`lookalike eval` end to end over the stand-in model server (plumbing, not relevance)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_eval_on_a_labelled_folder_and_near_duplicates(standin, photos, interiors, tmp_path):
    for cls, images in (("subjects", photos), ("interiors", dict(list(interiors.items())[:6]))):
        (tmp_path / "set" / cls).mkdir(parents=True)
        for name, data in images.items():
            (tmp_path / "set" / cls / f"{name}.jpg").write_bytes(data)
    out = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "lookalike", "eval", "--ts-url", standin.inference_url, "--models",
           "efficientnet_lite0", "--folder", str(tmp_path / "set"), "--near-duplicates", "--seeds", "1,2",
           "--kinds", "near-duplicate,pasted",
           "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Class retrieval" in done.stdout and "Copies" in done.stdout
    report = json.loads(out.read_text())
    assert report["images"] == len(photos) + 6
    classes = report["classes"]["efficientnet_lite0"]
    assert set(classes) == {"overall", "subjects", "interiors"} and classes["interiors"]["queries"] == 6
    copies = report["near_duplicates"]["efficientnet_lite0"]
    assert set(copies) == {
        f"{kind} {run}" for kind in ("near-duplicate", "pasted") for run in ("seed 1", "seed 2", "mean")
    }
    assert all(0 <= row["recall@1"] <= 1 for row in copies.values())


def test_eval_of_an_empty_folder_is_a_clear_error(standin, tmp_path):
    cmd = [sys.executable, "-m", "lookalike", "eval", "--ts-url", standin.inference_url, "--folder", str(tmp_path)]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no images in class folders" in done.stderr


def test_each_kind_of_copy_is_seeded_and_changes_the_picture(photos):
    import io

    import numpy as np
    from PIL import Image

    from lookalike.relevance.protocols import ALL_KINDS, copies

    images = [photos[name] for name in ("coffee", "chelsea", "rocket")]
    for kind in ALL_KINDS:
        first = copies(images, kind, np.random.default_rng(3))
        assert first == copies(images, kind, np.random.default_rng(3)), kind  # same seed, same copies
        assert first != copies(images, kind, np.random.default_rng(4)), kind
        for original, copy in zip(images, first, strict=True):
            assert copy != original and Image.open(io.BytesIO(copy)).format == "JPEG", kind


def test_region_scoring_takes_the_best_pair_of_vectors():
    import numpy as np

    from lookalike.relevance.evaluate import MODES, set_similarity

    e = np.eye(4, dtype=np.float32)
    copy = [np.stack([e[0], e[1]]), np.stack([e[2], e[3]])]  # whole, then one region
    orig = [np.stack([e[1], e[2]]), np.stack([e[3], e[0]])]
    assert set_similarity(copy, orig).tolist() == [[1, 1], [1, 1]]
    assert MODES["whole"](copy, orig).tolist() == [[0, 0], [0, 0]]
    assert MODES["indexed regions"](copy, orig).tolist() == [[0, 1], [1, 0]]  # copy 0's whole is orig 1's region
    assert MODES["reversed"](copy, orig).tolist() == [[1, 0], [0, 1]]


def test_eval_with_region_vectors_over_the_standin(standin, tmp_path):
    out = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "lookalike", "eval", "--ts-url", standin.inference_url, "--models",
           "efficientnet_lite0", "--regions", "none,grid2", "--seeds", "0", "--kinds", "heavy-crop",
           "--out", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["near_duplicates"]
    assert set(rows["efficientnet_lite0 none"]) == {"heavy-crop [whole]"}
    modes = ("whole", "indexed regions", "+query regions", "reversed")
    assert set(rows["efficientnet_lite0 grid2"]) == {f"heavy-crop [{mode}]" for mode in modes}
