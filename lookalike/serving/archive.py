"""Build `model_store/<name>.mar`: the handler package, the weights and a model-config.yaml.

    lookalike mar --model efficientnet_lite0
    lookalike mar --model resnet50 --weights ~/resnet50-11ad3fa6.pth
    lookalike mar --model resnet50 --random-weights   # tests/benchmarks only

The archive's model-config.yaml records the model id and dimension; `describe()` reads
them back so clients and the index can check what a `.mar` serves.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml
from lookalike_handler import backbones
from lookalike_handler.quantize import INT8_FILE

from lookalike.resources import asset
from lookalike.serving import int8
from lookalike.serving import weights as weights_mod
from lookalike.settings import MODEL_STORE

HANDLER_DIR = Path(backbones.__file__).resolve().parent  # handler/, shipped as the `lookalike_handler` package
BASE_CONFIG = asset("model_store", "model-config.yaml")

logger = logging.getLogger(__name__)


def model_config(
    model: str,
    random_weights: bool = False,
    base: Path = BASE_CONFIG,
    overrides: dict[str, Any] | None = None,
    handler_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checked-in model-config.yaml plus the backbone's id and dimension."""
    backbone = backbones.get_backbone(model)
    config = yaml.safe_load(base.read_text()) or {}
    config.update(overrides or {})
    handler = dict(config.get("handler") or {})
    handler.update(backbone=backbone.id, dimension=backbone.dimension, weights="random" if random_weights else "file")
    handler.update(handler_overrides or {})  # a fine-tuned archive states its head's dimension
    config["handler"] = handler
    return config


def build(
    model: str,
    store: Path = MODEL_STORE,
    name: str | None = None,
    weights: str | None = None,
    random_weights: bool = False,
    overrides: dict[str, Any] | None = None,
    handler_overrides: dict[str, Any] | None = None,
    extra_files: list[Path] | None = None,
    version: str = "1.0",
    try_int8: bool | None = None,
) -> Path:
    """Write `<store>/<name>.mar` and return its path. `extra_files` land beside the handler
    package in the model's directory (a fine-tuned head's weights). At precision auto, `try_int8`
    makes an int8 trunk and packs it if it is chosen (lookalike.serving.int8); None: for backbones
    marked int8_auto, with real weights."""
    name = name or model
    config = model_config(model, random_weights, overrides=overrides, handler_overrides=handler_overrides)
    serialized = None if random_weights else weights_mod.resolve(model, weights)
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lookalike-mar-") as tmp:
        stage = Path(tmp) / "extra"
        shutil.copytree(HANDLER_DIR, stage / "lookalike_handler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        for extra in extra_files or []:
            shutil.copy2(extra, stage / Path(extra).name)
        precision = config["handler"].get("precision", "auto")
        if try_int8 is None:  # auto: the backbones int8 pays for, with real weights
            try_int8 = backbones.get_backbone(model).int8_auto and serialized is not None
        try_int8 = try_int8 and not config["handler"].get("head")  # a fine-tuned head runs on the fp32 trunk
        if precision == "int8" or (precision == "auto" and try_int8):  # calibrated and checked now, never in a worker
            record = int8.make(model, None if serialized is None else str(serialized), stage / INT8_FILE,
                               enforce=precision == "int8")  # fmt: skip
            if precision == "auto" and not record["chosen"]:
                (stage / INT8_FILE).unlink()  # the record stays: it says why auto runs the default
            unchecked = " (random weights: recorded, not enforced)" if serialized is None else ""
            logger.info("int8 %s: cosine to fp32 mean %.4f, least %.4f; top-10 overlap %.3f%s; %s; int8 %s",
                        model, record["cosine_mean"], record["cosine_min"], record["overlap"], unchecked,
                        ", ".join(f"{k} {v} img/s" for k, v in record["race"].items()),
                        "chosen for precision auto" if record["chosen"] else "not chosen")  # fmt: skip
        config_file = Path(tmp) / "model-config.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [
            str(Path(sys.executable).with_name("torch-model-archiver")),
            "--model-name", name,
            "--version", version,
            "--handler", str(HANDLER_DIR / "ts_handler.py"),
            "--extra-files", str(stage),
            "--config-file", str(config_file),
            "--export-path", str(store),
            "--force",
        ]  # fmt: skip
        if serialized is not None:
            cmd += ["--serialized-file", str(serialized)]
        # The archiver stages files in $TMPDIR/<name>: give each build its own.
        subprocess.run(cmd, check=True, env={**os.environ, "TMPDIR": tmp})
    mar = store / f"{name}.mar"
    logger.info("wrote %s (%s, %d-d)", mar, model, config["handler"]["dimension"])
    return mar


def is_stale(mar: Path) -> bool:
    """True when `mar` is missing or older than the handler code or the checked-in model config."""
    if not mar.exists():
        return True
    sources = [*HANDLER_DIR.glob("*.py"), BASE_CONFIG]
    return max(path.stat().st_mtime for path in sources) > mar.stat().st_mtime


def describe(mar: Path) -> dict[str, Any]:
    """The model-config.yaml packed in a `.mar` (handler.backbone, handler.dimension, batch settings)."""
    with zipfile.ZipFile(mar) as archive:
        return yaml.safe_load(archive.read("model-config.yaml"))
