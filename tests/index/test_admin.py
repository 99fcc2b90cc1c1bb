"""Re-indexing for a new model behind the alias, on the real OpenSearch node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.index.documents import Doc
from lookalike.index.opensearch_index import OpenSearchIndex, alias_targets
from tests.backends import opensearch_settings

REPO = Path(__file__).resolve().parents[2]
LITE = "efficientnet_lite0"
pytestmark = pytest.mark.opensearch


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_new_model_is_indexed_beside_the_old_and_swapped_in_atomically(standin, photos, tmp_path, opensearch_url,
                                                                        os_alias):  # fmt: skip
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea", "rocket"):
        (folder / f"{name}.jpg").write_bytes(photos[name])
    old = OpenSearchIndex(opensearch_settings(opensearch_url, os_alias), "resnet50", 2048)
    old.upsert([Doc(id="x", vector=np.ones(2048, dtype=np.float32) / 45.25, model="resnet50")])
    common = ["--ts-url", standin.inference_url, "--model", LITE, "--opensearch-url", opensearch_url, "--alias",
              os_alias]  # fmt: skip

    def live() -> str:
        return alias_targets(old.client, os_alias)[0]

    assert run("lookalike", "ingest", str(folder), "--no-progress", *common).returncode == 2  # mismatch
    created = run("lookalike", "admin", "create", *common)
    assert created.returncode == 0, created.stdout + created.stderr
    new = created.stdout.strip()
    assert new.startswith(f"{os_alias}-efficientnet_lite0-1280-")
    filled = run("lookalike", "ingest", str(folder), "--no-progress", "--index", new, *common)
    assert "indexed 3, unchanged 0, failed 0" in filled.stdout, filled.stdout + filled.stderr
    assert live() == old.name  # still serving the old model meanwhile
    merged = run("lookalike", "admin", "merge", "--index", new, *common)
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["segments_after"] == 1 and json.loads(merged.stdout)["index"] == new

    swapped = run("lookalike", "admin", "swap", new, *common)
    assert swapped.returncode == 0 and f"{old.name} -> {new}" in swapped.stdout
    assert live() == new
    index = OpenSearchIndex(opensearch_settings(opensearch_url, os_alias), LITE, 1280)
    assert index.name == new and index.count() == 3
    assert old.client.indices.exists(index=old.name)  # kept for a rollback swap

    refused = run("lookalike", "admin", "swap", old.name, *common)
    assert refused.returncode == 2 and "model is 'resnet50'" in refused.stderr
    assert live() == new
