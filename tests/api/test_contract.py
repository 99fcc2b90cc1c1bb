"""The API against its own OpenAPI document: schemathesis with every check, write routes with a key.

Every status a route answers must be documented with the error shape, every schema-valid request
accepted (tests/api/schemathesis.toml states the one allowance: whether bytes are a usable image is
beyond a schema), every invalid one rejected, and no server error. Runs over the stand-in model
server and an embedded index holding a few real photos.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lookalike import stack
from lookalike.api import process
from lookalike.settings import Settings
from tests.api.conftest import LITE, WRITE_KEY

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def schemathesis() -> Path:
    """The schemathesis command (a dev dependency) beside this Python."""
    command = Path(sys.executable).with_name("schemathesis")
    if not command.is_file():
        pytest.fail("schemathesis is missing: make setup installs the dev dependencies")
    return command


def test_every_route_answers_as_its_openapi_document_says(schemathesis, standin, photos, tmp_path):
    settings = Settings(ts_url=standin.inference_url, model=LITE, data_dir=tmp_path / "index", api_key=WRITE_KEY,
                        thumb_dir=tmp_path / "thumbs", max_image_bytes=1_000_000)  # fmt: skip
    chosen = {name: photos[name] for name in ("coffee", "chelsea", "rocket")}
    stack.ingest(settings, stack.photo_items(chosen, tmp_path / "photos", "subjects", named=True))
    with process.ApiThread(settings) as api:
        done = subprocess.run(
            [str(schemathesis), "--no-color", "--config-file", str(CONFIG), "run", f"{api.url}/openapi.json",
             "--checks", "all", "--header", f"Authorization: Bearer {WRITE_KEY}", "--seed", "1"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    assert "Tested: 10" in done.stdout and " passed" in done.stdout and "failure" not in done.stdout, summary
