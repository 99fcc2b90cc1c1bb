"""The base the images build on where no registry is reachable: Debian 12 made locally.

The Containerfiles' default base is the usual slim Python image (python:3.11-slim-bookworm). Our
machines reach no image registry but do reach Debian's packages, so `lookalike image` makes the
same kind of base itself: debootstrap's minimal Debian 12 with its python3 (3.11) and venv, imported
as localhost/lookalike-base:bookworm. Made once; `--rebuild-base` makes it again.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from lookalike.containers import engine
from lookalike.errors import SettingsError

REGISTRY_BASE = "docker.io/library/python:3.11-slim-bookworm"  # the Containerfiles' default
LOCAL_BASE = "localhost/lookalike-base:bookworm"
SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
logger = logging.getLogger(__name__)


def mirror() -> str:
    """The Debian mirror apt uses on this machine (its sources), else Debian's own."""
    for path in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in line:
                return next(word for word in words[1:] if "://" in word)
    return "http://deb.debian.org/debian"


def choose(base: str, rebuild: bool = False) -> str:
    """The base to build on: `base` as given; for "auto", the registry's slim Python when it is
    here or can be pulled, else the local Debian base (made if missing)."""
    if base != "auto":
        return base
    if engine.image_exists(REGISTRY_BASE) or engine.run(["pull", "-q", REGISTRY_BASE], check=False,
                                                        capture=True).returncode == 0:  # fmt: skip
        return REGISTRY_BASE
    if rebuild or not engine.image_exists(LOCAL_BASE):
        make()
    return LOCAL_BASE


def make(tag: str = LOCAL_BASE) -> None:
    """debootstrap a minimal Debian 12 with python3 + venv and import it as `tag`."""
    if shutil.which("debootstrap") is None:
        raise SettingsError(f"no registry reachable for {REGISTRY_BASE} and no debootstrap to make a base: "
                            "apt-get install -y debootstrap (or give --base IMAGE)")  # fmt: skip
    started = time.monotonic()
    logger.info("no registry reachable: making %s with debootstrap from %s (once, about a minute) ...", tag, mirror())
    with tempfile.TemporaryDirectory(prefix="lookalike-base-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root),
                        mirror()], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        engine.run(["import", "-", tag], stdin=tar.stdout, capture=True)
        if tar.wait() != 0:
            raise SettingsError(f"could not pack the base made in {root}")
    logger.info("made %s in %.0f s", tag, time.monotonic() - started)
