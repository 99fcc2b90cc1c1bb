"""Build `model_store/<name>.mar`: the handler package, the weights and a model-config.yaml.

    python -m lookalike.archive --model efficientnet_lite0
    python -m lookalike.archive --model resnet50 --weights ~/resnet50-11ad3fa6.pth
    python -m lookalike.archive --model resnet50 --random-weights   # tests/benchmarks only

The archive's model-config.yaml records the model id and dimension; `describe()` reads
them back so clients and the index can check what a `.mar` serves.
"""

from __future__ import annotations

import argparse
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

from handler.backbones import BACKBONES, get_backbone

from . import weights as weights_mod

REPO = Path(__file__).resolve().parent.parent
HANDLER_DIR = REPO / "handler"
BASE_CONFIG = REPO / "model_store" / "model-config.yaml"
DEFAULT_STORE = REPO / "model_store"

logger = logging.getLogger(__name__)


def model_config(
    model: str,
    random_weights: bool = False,
    base: Path = BASE_CONFIG,
    overrides: dict[str, Any] | None = None,
    handler_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checked-in model-config.yaml plus the backbone's id and dimension."""
    backbone = get_backbone(model)
    config = yaml.safe_load(base.read_text()) or {}
    config.update(overrides or {})
    handler = dict(config.get("handler") or {})
    handler.update(handler_overrides or {})
    handler.update(backbone=backbone.id, dimension=backbone.dimension, weights="random" if random_weights else "file")
    config["handler"] = handler
    return config


def build(
    model: str,
    store: Path = DEFAULT_STORE,
    name: str | None = None,
    weights: str | None = None,
    random_weights: bool = False,
    overrides: dict[str, Any] | None = None,
    handler_overrides: dict[str, Any] | None = None,
) -> Path:
    """Write `<store>/<name>.mar` and return its path."""
    name = name or model
    config = model_config(model, random_weights, overrides=overrides, handler_overrides=handler_overrides)
    serialized = None if random_weights else weights_mod.resolve(model, weights)
    store = Path(store)
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lookalike-mar-") as tmp:
        stage = Path(tmp) / "extra"
        shutil.copytree(HANDLER_DIR, stage / "handler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        config_file = Path(tmp) / "model-config.yaml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [
            str(Path(sys.executable).with_name("torch-model-archiver")),
            "--model-name", name,
            "--version", "1.0",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lookalike.archive",
        description="Build a TorchServe .mar for one backbone.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", choices=sorted(BACKBONES), default="resnet50", help="backbone")
    parser.add_argument("--name", help="archive/model name (default: the backbone id)")
    parser.add_argument("--store", type=Path, default=DEFAULT_STORE, help="where to write the .mar")
    parser.add_argument("--weights", help="explicit weights file (resnet50)")
    parser.add_argument("--random-weights", action="store_true", help="seeded random weights: plumbing/speed only")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16", "auto"], help="override handler.precision")
    parser.add_argument("--batch-size", type=int, help="override batchSize")
    parser.add_argument("--max-batch-delay", type=int, help="override maxBatchDelay (ms)")
    parser.add_argument("--workers", type=int, help="override minWorkers and maxWorkers")
    parser.add_argument(
        "--if-stale", action="store_true", help="build only if the .mar is missing or older than the code"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    overrides: dict[str, Any] = {}
    if args.batch_size:
        overrides["batchSize"] = args.batch_size
    if args.max_batch_delay is not None:
        overrides["maxBatchDelay"] = args.max_batch_delay
    if args.workers:
        overrides.update(minWorkers=args.workers, maxWorkers=args.workers)
    handler_overrides = {"precision": args.precision} if args.precision else {}
    target = args.store / f"{args.name or args.model}.mar"
    if args.if_stale and not is_stale(target):
        print(f"{target} is up to date")
        return 0
    try:
        mar = build(args.model, args.store, args.name, args.weights, args.random_weights, overrides, handler_overrides)
    except weights_mod.WeightsNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(mar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
