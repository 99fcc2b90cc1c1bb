"""Ingest end to end with real TorchServe: bad files, re-runs, kill -9, the OpenSearch double."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.index.opensearch_index import OpenSearchIndex
from lookalike.settings import Settings
from tests.index.double import OpenSearchDouble

REPO = Path(__file__).resolve().parents[2]
LITE = "efficientnet_lite0"


@pytest.fixture
def folder(tmp_path, photos, interiors) -> Path:
    root = tmp_path / "photos"
    for category, images in (("subjects", photos), ("interiors", dict(list(interiors.items())[:12]))):
        (root / category).mkdir(parents=True)
        for name, data in images.items():
            (root / category / f"{name}.jpg").write_bytes(data)
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "notes.png").write_bytes(b"just some text\n")
    (root / "bad" / "cut.jpg").write_bytes(photos["coffee"][:600])
    (root / "README.txt").write_text("not an image suffix: not ingested")
    return root


def valid_ids(root: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*.jpg") if p.parent.name != "bad"}


def ingest(server, root: Path, data_dir: Path, *extra: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "lookalike", "ingest", str(root), "--ts-url", server.inference_url, "--model", LITE,
           "--data-dir", str(data_dir), "--no-progress", "--errors", str(data_dir / "errors.csv"), *extra]  # fmt: skip
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, **popen)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def indexed_ids(data_dir: Path) -> list[str]:
    (db,) = data_dir.glob("*/docs.sqlite")
    with sqlite3.connect(db) as conn:
        try:
            return [row[0] for row in conn.execute("SELECT id FROM docs")]
        except sqlite3.OperationalError:  # the ingest process has created the file but not its tables yet
            return []


def test_folder_ingest_counts_reports_bad_files_and_is_idempotent(standin, folder, tmp_path):
    data_dir = tmp_path / "index"
    first = ingest(standin, folder, data_dir)
    assert first.returncode == 1, first.stdout + first.stderr  # some images failed
    assert "indexed 24, unchanged 0, failed 3" in first.stdout
    with open(data_dir / "errors.csv", newline="") as handle:
        errors = {Path(row["source"]).name: row["reason"] for row in csv.DictReader(handle)}
    assert set(errors) == {"empty.jpg", "notes.png", "cut.jpg"}
    assert "empty" in errors["empty.jpg"] and "text" in errors["notes.png"] and "truncated" in errors["cut.jpg"].lower()
    assert sorted(indexed_ids(data_dir)) == sorted(valid_ids(folder))

    again = ingest(standin, folder, data_dir)
    assert "indexed 0, unchanged 24, failed 3" in again.stdout
    assert len(indexed_ids(data_dir)) == 24


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_without_loss_or_duplicates(server, folder, tmp_path):
    """Real TorchServe: the run must still be writing when it is killed (the stand-in is too fast)."""
    data_dir = tmp_path / "index"
    for path in (folder / "bad").iterdir():
        path.unlink()
    run = ingest(server, folder, data_dir, "--concurrency", "1", "--batch", "2",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if list(data_dir.glob("*/docs.sqlite")) and len(indexed_ids(data_dir)) >= 6:
            break
        time.sleep(0.1)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    partial = len(indexed_ids(data_dir))
    assert 6 <= partial < 24, partial
    resumed = ingest(server, folder, data_dir)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"indexed {24 - partial}, unchanged {partial}, failed 0" in resumed.stdout
    ids = indexed_ids(data_dir)
    assert len(ids) == len(set(ids)) == 24 and set(ids) == valid_ids(folder)


def test_manifest_ingest_into_opensearch_double_with_given_ids_and_tags(standin, folder, tmp_path):
    manifest = tmp_path / "images.csv"
    rows = ["id,path,category,tags"]
    for i, path in enumerate(sorted((folder / "subjects").glob("*.jpg"))):
        rows.append(f"img-{i},{path},subjects,{'sample;odd' if i % 2 else 'sample'}")
    manifest.write_text("\n".join(rows) + "\n")
    with OpenSearchDouble() as double:
        cmd = [sys.executable, "-m", "lookalike", "ingest", "--manifest", str(manifest), "--ts-url",
               standin.inference_url, "--model", LITE, "--opensearch-url", double.url, "--alias", "photos",
               "--no-progress", "--errors", str(tmp_path / "errors.csv")]  # fmt: skip
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "indexed 12, unchanged 0, failed 0" in result.stdout
        index = OpenSearchIndex(Settings(opensearch_url=double.url, alias="photos"), LITE, 1280)
        assert index.count() == 12 and index.name.startswith("photos-efficientnet_lite0-1280-")
        doc = index.get("img-3")
        assert doc.tags == ["sample", "odd"] and doc.category == "subjects" and doc.vector.shape == (1280,)
        again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert "nothing new" in again.stdout


def test_an_index_built_for_another_model_is_refused_before_any_write(standin, folder, tmp_path):
    with OpenSearchDouble() as double:
        OpenSearchIndex(Settings(opensearch_url=double.url, alias="photos"), "resnet50", 2048)
        cmd = [sys.executable, "-m", "lookalike", "ingest", str(folder), "--ts-url", standin.inference_url, "--model",
               LITE, "--opensearch-url", double.url, "--alias", "photos", "--no-progress"]  # fmt: skip
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2
        assert "model is 'resnet50', not 'efficientnet_lite0'" in result.stderr
        assert "dimension is 2048, not 1280" in result.stderr
        assert not [path for method, path in double.cluster.requests if path.endswith("_bulk")]
