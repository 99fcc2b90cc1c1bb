"""What `lookalike image` puts in each image, checked without building one (fast tier): each
image's requirements are pyproject.toml's own pins, the API's has no torch, the Containerfiles name
the files the staged context holds, and a machine without an engine gets a clear error."""

from __future__ import annotations

import re

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
