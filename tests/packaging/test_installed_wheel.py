"""The package as a user installs it: a wheel in a fresh virtual environment, run outside the checkout.

The wheel is built from this checkout and installed with --no-deps into a new venv; its dependencies
(torch and the rest, ~6 GB) come from the project's venv through a .pth line, which adds that
folder to sys.path without running its .pth files, so the checkout's editable install stays out of
sight. The installed `lookalike` must find its mapping and config as package data and put run state
under LOOKALIKE_HOME, writing nothing into the checkout or beside site-packages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.backends import CLIENT_VARIABLES, drop_indices
from tests.conftest import LITE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `lookalike` command of a fresh venv holding only the wheel built from this checkout."""
    root = tmp_path_factory.mktemp("installed")
    wheels = root / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(wheels), str(REPO)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("lookalike-*.whl"))
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q", str(wheel)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    return venv / "bin" / "lookalike"


def run(installed: Path, cwd: Path, home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("LOOKALIKE_")}
    environ.update(LOOKALIKE_HOME=str(home), **env)
    return subprocess.run([str(installed), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300)


def test_the_wheel_carries_its_files_and_runs_from_anywhere(installed, tmp_path):
    probe = [str(installed.with_name("python")), "-c",
             "import lookalike, lookalike.resources as r, lookalike.settings as s; "
             "print(lookalike.__file__); print(r.asset('opensearch', 'mapping.json')); "
             "print(s.MODEL_STORE)"]  # fmt: skip
    environ = {**os.environ, "LOOKALIKE_HOME": str(tmp_path / "home")}
    where = subprocess.run(probe, cwd=tmp_path, env=environ, capture_output=True, text=True, check=True).stdout.split()
    assert "site-packages" in where[0] and not where[0].startswith(str(REPO)), where
    assert "site-packages" in where[1] and Path(where[1]).is_file()
    assert where[2] == str(tmp_path / "home" / "model_store")  # archives under the home, not the checkout
    assert run(installed, tmp_path, tmp_path / "home", "--help").returncode == 0


def test_the_installed_command_indexes_into_an_embedded_index_under_its_home(installed, standin, photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("coffee", "chelsea", "rocket"):
        (folder / f"{name}.jpg").write_bytes(photos[name])
    home, before = tmp_path / "home", set(os.listdir(REPO))
    done = run(installed, tmp_path, home, "ingest", str(folder), "--no-progress", "--ts-url", standin.inference_url,
               "--model", LITE)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "indexed 3, unchanged 0, failed 0" in done.stdout
    assert list(home.glob("index/*/docs.sqlite")) and (home / "ingest-errors.csv").is_file()
    assert set(os.listdir(REPO)) == before and not (installed.parents[1] / "lib" / "run").exists()


def test_the_installed_command_creates_an_index_on_the_real_node(installed, standin, photos, opensearch_url, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "coffee.jpg").write_bytes(photos["coffee"])
    alias = f"t-wheel-{os.getpid()}"
    reach = {name: os.environ[name] for name in CLIENT_VARIABLES if os.environ.get(name)}  # a secured node's user
    reach["LOOKALIKE_OPENSEARCH_URL"] = opensearch_url
    try:
        done = run(installed, tmp_path, tmp_path / "home", "ingest", str(folder), "--no-progress", "--ts-url",
                   standin.inference_url, "--model", LITE, LOOKALIKE_ALIAS=alias, **reach)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "indexed 1, unchanged 0, failed 0" in done.stdout and "'backend': 'opensearch'" in done.stdout
        info = run(installed, tmp_path, tmp_path / "home", "admin", "info", "--ts-url", standin.inference_url,
                   "--model", LITE, LOOKALIKE_ALIAS=alias, **reach)  # fmt: skip
        assert info.returncode == 0 and '"space": "cosinesimil"' in info.stdout, info.stdout + info.stderr
    finally:
        drop_indices(opensearch_url, alias)
