"""What `lookalike image` puts in each image, checked without building one (fast tier): each
image's requirements are pyproject.toml's own pins, the API's has no torch, each image installs what
its entry point imports, the Containerfiles name the files the staged context holds, and a machine
without an engine gets a clear error."""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys

import pytest

from lookalike.containers import engine, images
from lookalike.errors import SettingsError


def test_each_image_pins_what_pyproject_pins():
    pinned = images.pins()
    for image in images.IMAGES.values():
        lines = images.requirements(image, pinned).splitlines()
        assert len(lines) == len(image.packages)
        assert all(line in pinned.values() for line in lines)
    api = images.requirements(images.IMAGES["api"], pinned)
    assert not re.search(r"^(torch|torchvision|torchserve)\b", api, re.M)  # the model server embeds
    assert "torch==" in images.requirements(images.IMAGES["model-server"], pinned)


def test_an_unknown_package_is_refused():
    image = images.Image("x", "x.Containerfile", ("numpy", "left-pad"))
    with pytest.raises(SettingsError, match="left-pad not among"):
        images.requirements(image, images.pins())


def test_containerfiles_copy_what_the_context_holds():
    for image in images.IMAGES.values():
        text = (images.ROOT / "deploy" / "containers" / image.containerfile).read_text()
        assert f"requirements-{image.name}.txt" in text and "COPY wheels/" in text
        assert "USER 10001" in text and "AS build" in text  # non-root, multi-stage
        assert "ARG BASE=docker.io/library/python:3.11-slim-bookworm" in text


def test_a_missing_engine_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(SettingsError, match="apt-get install -y podman"):
        engine.engine()


# What each Containerfile's ENTRYPOINT imports (`python -m lookalike.api` runs lookalike.api.serve's `run`)
ENTRY_POINTS = {"api": "lookalike.api.serve", "model-server": "lookalike.serving.gate"}
CHILD = "import importlib, json, sys; importlib.import_module(sys.argv[1]); print(json.dumps(sorted(sys.modules)))"


def carried(packages: tuple[str, ...]) -> set[str]:
    """The distributions an image installs: its packages and everything they require (no extras)."""
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        name = images.normalise(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            required = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[<>=!~\[; (]", line, maxsplit=1)[0] for line in required if "extra ==" not in line]
    return seen


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_each_image_carries_every_distribution_its_entry_point_imports(name):
    """Imported in a fresh process as the container starts it: a module of one of pyproject.toml's
    dependencies that the image does not install (threadpoolctl once, in the API) would stop the
    container at start. Optional imports of other distributions (brotli, tried by HTTP clients) are
    not ours to pin."""
    child = subprocess.run([sys.executable, "-c", CHILD, ENTRY_POINTS[name]], capture_output=True, text=True,
                           timeout=120, check=True)  # fmt: skip
    owners = importlib.metadata.packages_distributions()
    top = {module.split(".")[0] for module in json.loads(child.stdout)}
    needed = {images.normalise(dist) for module in top for dist in owners.get(module, [])} & set(images.pins())
    missing = needed - carried(images.IMAGES[name].packages)
    assert not missing, f"the {name} image does not install {sorted(missing)}"
