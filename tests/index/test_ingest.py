"""Ingest end to end: bad files, re-runs, kill -9 — into the embedded index and the real OpenSearch node."""

from __future__ import annotations

import csv
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from opensearchpy.exceptions import NotFoundError

from lookalike.cli.main import main
from lookalike.index.opensearch_client import connect
from lookalike.index.opensearch_index import OpenSearchIndex
from tests.backends import BACKENDS, drop_indices, is_opensearch, node_url, opensearch_settings

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


class Target:
    """Where an ingest run writes: an embedded index in a folder, or an alias on the real node."""

    def __init__(self, backend: str, tmp_path: Path, request) -> None:
        self.backend, self.data_dir = backend, tmp_path / "index"
        self.data_dir.mkdir()
        if is_opensearch(backend):
            self.url, self.alias = node_url(request, backend), f"t-{uuid.uuid4().hex[:10]}"
            request.addfinalizer(lambda: drop_indices(self.url, self.alias))
            self.args = ["--opensearch-url", self.url, "--alias", self.alias]
        else:
            self.args = ["--data-dir", str(self.data_dir)]

    def ids(self) -> list[str]:
        """Every indexed id, duplicates kept."""
        if is_opensearch(self.backend):
            client = connect(opensearch_settings(self.url, self.alias))
            try:
                client.indices.refresh(index=self.alias)
            except NotFoundError:  # the run has not created its index yet
                return []
            hits = client.search(index=self.alias, body={"size": 1000, "_source": ["id"]})["hits"]["hits"]
            return [hit["_source"]["id"] for hit in hits]
        dbs = list(self.data_dir.glob("*/docs.sqlite"))
        if not dbs:
            return []
        with sqlite3.connect(dbs[0]) as conn:
            try:
                return [row[0] for row in conn.execute("SELECT id FROM docs")]
            except sqlite3.OperationalError:  # the ingest process has created the file but not its tables yet
                return []

    def featured(self) -> set[str]:
        """The ids whose local features the run wrote: OpenSearch's <alias>-features, or the file
        beside the embedded index."""
        if is_opensearch(self.backend):
            client = connect(opensearch_settings(self.url, self.alias))
            client.indices.refresh(index=f"{self.alias}-features")
            hits = client.search(index=f"{self.alias}-features", body={"size": 1000, "_source": False})["hits"]
            return {hit["_id"] for hit in hits["hits"]}
        with sqlite3.connect(self.data_dir / "lookalike.features.sqlite") as conn:
            return {row[0] for row in conn.execute("SELECT id FROM features")}


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path) -> Target:
    return Target(request.param, tmp_path, request)


def ingest(server, root: Path, target: Target, *extra: str, **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    cmd = [sys.executable, "-m", "lookalike", "ingest", str(root), "--ts-url", server.inference_url, "--model", LITE,
           *target.args, "--no-progress", "--errors", str(target.data_dir / "errors.csv"), *extra]  # fmt: skip
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, **popen)
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_folder_ingest_counts_reports_bad_files_and_is_idempotent(standin, folder, target, capsys):
    data_dir = target.data_dir
    first = ingest(standin, folder, target)
    assert first.returncode == 1, first.stdout + first.stderr  # some images failed
    assert "indexed 24, unchanged 0, failed 3" in first.stdout
    with open(data_dir / "errors.csv", newline="") as handle:
        errors = {Path(row["source"]).name: row["reason"] for row in csv.DictReader(handle)}
    assert set(errors) == {"empty.jpg", "notes.png", "cut.jpg"}
    assert "empty" in errors["empty.jpg"] and "text" in errors["notes.png"] and "truncated" in errors["cut.jpg"].lower()
    assert sorted(target.ids()) == sorted(valid_ids(folder))
    assert target.featured() == valid_ids(folder)  # each image's local features, written beside it

    # the same command in-process (the subprocess run above proved the exit code and output)
    args = ["ingest", str(folder), "--ts-url", standin.inference_url, "--model", LITE, *target.args, "--no-progress",
            "--errors", str(target.data_dir / "errors.csv")]  # fmt: skip
    assert main(args) == 1
    assert "indexed 0, unchanged 24, failed 3" in capsys.readouterr().out
    assert len(target.ids()) == 24


def test_a_run_killed_with_sigkill_resumes_without_loss_or_duplicates(server, folder, target):
    """Real TorchServe: the run must still be writing when it is killed (the stand-in is too fast)."""
    for path in (folder / "bad").iterdir():
        path.unlink()
    run = ingest(server, folder, target, "--concurrency", "1", "--batch", "2",
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(target.ids()) < 6:
        time.sleep(0.1)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    time.sleep(1)  # a bulk request already sent when the run died lands before we count
    partial = len(target.ids())
    assert 6 <= partial < 24, partial
    resumed = ingest(server, folder, target)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"indexed {24 - partial}, unchanged {partial}, failed 0" in resumed.stdout
    ids = target.ids()
    assert len(ids) == len(set(ids)) == 24 and set(ids) == valid_ids(folder)


@pytest.mark.opensearch
def test_manifest_ingest_into_opensearch_with_given_ids_and_tags(standin, folder, tmp_path, opensearch_url, os_alias):
    manifest = tmp_path / "images.csv"
    rows = ["id,path,category,tags"]
    for i, path in enumerate(sorted((folder / "subjects").glob("*.jpg"))):
        rows.append(f"img-{i},{path},subjects,{'sample;odd' if i % 2 else 'sample'}")
    manifest.write_text("\n".join(rows) + "\n")
    cmd = [sys.executable, "-m", "lookalike", "ingest", "--manifest", str(manifest), "--ts-url",
           standin.inference_url, "--model", LITE, "--opensearch-url", opensearch_url, "--alias", os_alias,
           "--no-progress", "--errors", str(tmp_path / "errors.csv")]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "indexed 12, unchanged 0, failed 0" in result.stdout
    index = OpenSearchIndex(opensearch_settings(opensearch_url, os_alias), LITE, 1280)
    assert index.count() == 12 and index.name.startswith(f"{os_alias}-efficientnet_lite0-1280-")
    assert index.describe()["engine"] == "lucene"  # the node declares no k-NN native libraries
    doc = index.get("img-3")
    assert doc.tags == ["sample", "odd"] and doc.category == "subjects" and doc.vector.shape == (1280,)
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert "nothing new" in again.stdout


@pytest.mark.opensearch
def test_an_index_built_for_another_model_is_refused_before_any_write(standin, folder, opensearch_url, os_alias):
    old = OpenSearchIndex(opensearch_settings(opensearch_url, os_alias), "resnet50", 2048)
    cmd = [sys.executable, "-m", "lookalike", "ingest", str(folder), "--ts-url", standin.inference_url, "--model",
           LITE, "--opensearch-url", opensearch_url, "--alias", os_alias, "--no-progress"]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "model is 'resnet50', not 'efficientnet_lite0'" in result.stderr
    assert "dimension is 2048, not 1280" in result.stderr
    old.flush()
    assert old.count() == 0  # nothing written to the old model's index
    assert list(old.client.indices.get(index=f"{os_alias}-*")) == [old.name]  # and no index made beside it
