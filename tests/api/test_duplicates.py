"""De-duplication for people through the API, on both backends: `lookalike dedup` (the CLI
command) keeps its run in the index, GET /duplicates pages it, POST /duplicates/decisions records
decisions, and a decision holds after an API restart and a re-run. Stand-in model server (fast
tier for the embedded index); features come from the photos' source files and the uploads."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import requests
from PIL import Image

from lookalike.cli.main import main
from lookalike.settings import Settings
from tests.api.conftest import LITE, WRITE_KEY
from tests.verify.test_verified_dedup import jpeg

REPO = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": f"Bearer {WRITE_KEY}"}


def dedup_cli(settings: Settings, out: Path, capsys=None) -> dict:
    """`lookalike dedup` as typed: in this process when given `capsys` (no API may run then: it opens
    the index, the feature store and the review store itself), else in a process of its own."""
    where = (["--opensearch-url", settings.opensearch_url, "--alias", settings.alias] if settings.opensearch_url
             else ["--data-dir", str(settings.data_dir)])  # fmt: skip
    argv = ["dedup", "--threshold", "0", "--out", str(out), "--ts-url", settings.ts_url, "--model", LITE, *where]
    if capsys is not None:
        code = main(argv)
        printed = capsys.readouterr()
        assert code == 0, printed.err
        output = printed.out
    else:
        done = subprocess.run([sys.executable, "-m", "lookalike", *argv], cwd=REPO, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        output = done.stdout
    assert "review them at /duplicates" in output
    return {group["keep"]["id"]: group for group in json.loads(out.read_text())}


def test_review_decide_restart_rerun(api, catalogue, photos, tmp_path, capsys):
    coffee = Image.open(io.BytesIO(photos["coffee"])).convert("RGB")
    with api(api_key=WRITE_KEY) as running:
        empty = requests.get(f"{running.url}/duplicates", timeout=30).json()
        assert empty["run"] is None and empty["groups"] == [] and empty["total"] == 0
        for name, img in (
            ("coffee-small", coffee.resize((300, 200))),
            ("coffee-crop", coffee.crop((80, 40, 520, 360))),
        ):
            put = requests.put(f"{running.url}/images/{name}", data=jpeg(img), headers=AUTH, timeout=60)
            assert put.status_code == 201, put.text

    groups = dedup_cli(catalogue, tmp_path / "first.json", capsys)
    assert sorted(d["id"] for d in groups["coffee"]["duplicates"]) == ["coffee-crop", "coffee-small"], groups
    assert "decision" not in groups["coffee"]

    with api(api_key=WRITE_KEY) as running:
        listed = requests.get(f"{running.url}/duplicates", params={"per_page": 100}, timeout=30).json()
        assert listed["run"]["verified"] is True and listed["run"]["images"] >= 17
        [found] = [g for g in listed["groups"] if g["keep"]["id"] == "coffee"]
        assert found["keep"]["width"] == 600 and found["deleted"] == []
        assert {d["verdict"] for d in found["duplicates"]} <= {"copy", "part"}
        ids = ["coffee", "coffee-small", "coffee-crop"]
        body = {"decisions": [{"decision": "keep", "ids": ids, "keep": "coffee-small"}]}
        assert requests.post(f"{running.url}/duplicates/decisions", json=body, timeout=30).status_code == 401
        unknown = {"decisions": [{"decision": "resolved", "ids": ["coffee", "no-such-image"]}]}
        missing = requests.post(f"{running.url}/duplicates/decisions", json=unknown, headers=AUTH, timeout=30)
        assert missing.status_code == 404 and "no-such-image" in missing.json()["error"]
        wrong = {"decisions": [{"decision": "keep", "ids": ids, "keep": "chelsea"}]}
        refused = requests.post(f"{running.url}/duplicates/decisions", json=wrong, headers=AUTH, timeout=30)
        assert refused.status_code == 400 and "not one of ids" in refused.json()["error"]
        done = requests.post(f"{running.url}/duplicates/decisions", json=body, headers=AUTH, timeout=30)
        assert done.status_code == 200 and done.json()["recorded"] == 1
        pending = requests.get(f"{running.url}/duplicates", timeout=30).json()
        assert all(g["keep"]["id"] not in ids for g in pending["groups"])  # gone from the review at once
        assert pending["counts"]["keep"] == 1

    with api(api_key=WRITE_KEY) as running:  # a restart
        decided = requests.get(f"{running.url}/duplicates", params={"status": "decided"}, timeout=30).json()
        assert [(g["keep"]["id"], g["decision"]["decision"]) for g in decided["groups"]] == [("coffee-small", "keep")]
        page = requests.get(f"{running.url}/duplicates", headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200 and "review duplicates" in page.text  # a browser gets the review page

    again = dedup_cli(catalogue, tmp_path / "again.json", capsys)  # a re-run honours the decision
    assert again["coffee-small"]["decision"]["decision"] == "keep"
    assert sorted(d["id"] for d in again["coffee-small"]["duplicates"]) == ["coffee", "coffee-crop"]
