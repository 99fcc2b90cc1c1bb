"""Build the two images: stage one context, build each Containerfile on it, print sizes and times.

    lookalike image                       # both images, on the slim Python base or a local one
    lookalike image --only api --base docker.io/library/python:3.11-slim-bookworm

The context (build/image/) holds what the Containerfiles copy: our wheel, the model server's
archives, and for each image a requirements file with the versions pyproject.toml pins, narrowed
to what that image runs (IMAGES). The host's CA bundle goes in as a build secret (pip behind a
TLS-inspecting proxy), never into a layer; pip's downloads stay in the engine's build cache
(`RUN --mount=type=cache`), and the installed dependencies are one cached layer of the final
stage: a rebuild with the same pins installs nothing. The image a rebuild replaces is removed
(a 6 GB model server per build otherwise fills a disk).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lookalike import __version__
from lookalike.containers import base as base_mod
from lookalike.containers import engine
from lookalike.errors import SettingsError
from lookalike.settings import DEFAULT_MODEL, MODEL_STORE, checkout

ROOT = checkout() or Path.cwd()
CONTEXT = ROOT / "build" / "image"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
EPOCH = 315532800  # 1980-01-01 (zip's earliest): the wheel's file times, so its bytes follow its sources
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Image:
    name: str
    containerfile: str
    packages: tuple[str, ...]  # distributions it runs, pinned as pyproject.toml pins them

    @property
    def tag(self) -> str:
        return f"localhost/lookalike-{self.name}:{__version__}"


IMAGES = {
    "model-server": Image("model-server", "model-server.Containerfile", (
        "torch", "torchvision", "torchserve", "pyyaml", "pillow", "numpy", "requests", "tqdm",
        "efficientnet-lite-pytorch")),
    "api": Image("api", "api.Containerfile", (
        "fastapi", "uvicorn", "python-multipart", "httpx", "numpy", "pillow", "pyyaml", "requests", "tqdm",
        "faiss-cpu", "opencv-python-headless", "scipy", "threadpoolctl", "opensearch-py", "orjson", "botocore",
        "prometheus-client")),
}  # fmt: skip


def pins(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """Each dependency's requirement line by normalised name, from pyproject.toml."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return {normalise(re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0]): dep for dep in deps}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(image: Image, pinned: dict[str, str]) -> str:
    missing = [name for name in image.packages if normalise(name) not in pinned]
    if missing:
        raise SettingsError(f"{image.name}: {', '.join(missing)} not among pyproject.toml's dependencies")
    return "\n".join(pinned[normalise(name)] for name in image.packages) + "\n"


def stage(models: list[str], context: Path = CONTEXT, store: Path = MODEL_STORE) -> Path:
    """Write the build context: the wheel, the archives, the requirements files."""
    from lookalike import stack  # torch: only the model server's archives need it

    shutil.rmtree(context, ignore_errors=True)
    (context / "wheels").mkdir(parents=True)
    (context / "model_store").mkdir()
    # the same sources give the same wheel, byte for byte
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", "-w", str(context / "wheels"), str(ROOT)], check=True,
                   env={**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH)})  # fmt: skip
    for model in models:
        shutil.copy2(stack.ensure_archive(model, store), context / "model_store" / f"{model}.mar")
    pinned = pins()
    for image in IMAGES.values():
        (context / f"requirements-{image.name}.txt").write_text(requirements(image, pinned))
    for path in ROOT.glob("deploy/containers/*.Containerfile"):
        shutil.copy2(path, context / path.name)
    return context


def build(image: Image, base: str, context: Path = CONTEXT) -> float:
    """Build `image` on `base`; seconds taken."""
    args = ["build", "--network", "host", "-f", str(context / image.containerfile), "--build-arg", f"BASE={base}",
            "-t", image.tag, "-t", f"localhost/lookalike-{image.name}:latest"]  # fmt: skip
    if CA_BUNDLE.is_file():
        args += ["--secret", f"id=ca,src={CA_BUNDLE}"]
    started = time.monotonic()
    before = engine.image_id(image.tag)
    logger.info("building %s on %s ...", image.tag, base)
    engine.run([*args, str(context)])
    after = engine.image_id(image.tag)
    if before and before != after:  # the image this build replaced, and its layers no other image uses
        engine.run(["rmi", before], check=False, capture=True)
    return time.monotonic() - started


def main(only: list[str] | None = None, base: str = "auto", models: list[str] | None = None,
         rebuild_base: bool = False) -> int:  # fmt: skip
    names = only or list(IMAGES)
    unknown = [name for name in names if name not in IMAGES]
    if unknown:
        raise SettingsError(f"unknown image {', '.join(unknown)}; choose from {', '.join(IMAGES)}")
    started = time.monotonic()
    chosen = base_mod.choose(base, rebuild_base)
    context = stage(models or [DEFAULT_MODEL])
    rows = []
    for name in names:
        try:
            seconds = build(IMAGES[name], chosen, context)
        except subprocess.CalledProcessError as exc:
            raise SettingsError(f"building {IMAGES[name].tag} failed (exit {exc.returncode}); the build's "
                                "output above says where") from exc  # fmt: skip
        rows.append((IMAGES[name].tag, engine.image_size(IMAGES[name].tag) / 1e6, seconds))
    print(f"\nbase {chosen}; {time.monotonic() - started:.0f} s in all")
    print(f"{'image':<44} {'size MB':>8} {'build s':>8}")
    for tag, size, seconds in rows:
        print(f"{tag:<44} {size:>8.0f} {seconds:>8.0f}")
    return 0
