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

import httpx
import pytest

from lookalike import stack
from lookalike.api import process
from lookalike.api.app import create_app
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
        operations = sum(len(methods) for methods in httpx.get(f"{api.url}/openapi.json").json()["paths"].values())
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    assert operations >= 12 and f"Tested: {operations}" in done.stdout, summary  # every route, /live and /ready too
    assert " passed" in done.stdout and "failure" not in done.stdout, summary


def test_every_json_answer_is_described_by_a_model(tmp_path):
    """Each route's success answers carry a schema in /openapi.json (fast: the document only), so the
    contract test above checks response shapes too, not only statuses."""
    spec = create_app(Settings(data_dir=tmp_path / "index")).openapi()
    described = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code.startswith("2") and code != "204":
                    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                    described[f"{method.upper()} {path} {code}"] = schema.get("$ref")
    described.pop("GET /images/{doc_id}/thumbnail 200")  # a JPEG
    assert described and all(described.values()), {route: ref for route, ref in described.items() if not ref}
    assert described["POST /search 200"] == "#/components/schemas/SearchAnswer"
