"""The container engine: podman (or docker), run with our settings where they are needed.

On our machines podman needs runc and no default ulimits (deploy/containers/containers.conf, handed
in through CONTAINERS_CONF unless the caller set one). Elsewhere the engine's own defaults apply.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from lookalike.errors import SettingsError
from lookalike.settings import checkout

CONF = (checkout() or Path.cwd()) / "deploy" / "containers" / "containers.conf"


def engine() -> str:
    """podman, else docker; a clear error when neither is installed."""
    for name in ("podman", "docker"):
        if shutil.which(name):
            return name
    raise SettingsError("no container engine: install podman (Debian: apt-get install -y podman runc debootstrap)")


def environ() -> dict[str, str]:
    env = dict(os.environ)
    if CONF.is_file() and "CONTAINERS_CONF" not in env:
        env["CONTAINERS_CONF"] = str(CONF)
    return env


def run(args: Sequence[str], check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
    """`<engine> args...` with our settings."""
    return subprocess.run([engine(), *args], env=environ(), check=check, text=True,
                          capture_output=capture, **kwargs)  # fmt: skip


def image_exists(tag: str) -> bool:
    return run(["image", "inspect", tag], check=False, capture=True).returncode == 0


def image_id(tag: str) -> str | None:
    """The image `tag` names now, or None."""
    done = run(["image", "inspect", "--format", "{{.Id}}", tag], check=False, capture=True)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def image_size(tag: str) -> int:
    """Bytes of `tag` as the engine stores it (uncompressed layers)."""
    return int(run(["image", "inspect", "--format", "{{.Size}}", tag], capture=True).stdout.strip())
