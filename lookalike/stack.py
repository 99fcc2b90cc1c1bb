"""The whole stack, assembled once: build the archive, start TorchServe, open the index, ingest, stop
it all. `lookalike demo`, `lookalike loadtest`, the benchmarks and the test fixtures use these
functions instead of repeating the sequence; the API's own process control is lookalike.api.process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.api.process import stop_api
from lookalike.index import VectorIndex, live, open_index
from lookalike.ingest.pipeline import Ingestor, Report
from lookalike.ingest.sources import Item
from lookalike.ports import free_ports
from lookalike.serving.client import ModelClient, ModelInfo
from lookalike.serving.torchserve import PORT_KEYS, TorchServe
from lookalike.settings import MODEL_STORE, RUN_DIR, TORCHSERVE_PORTS, Settings

logger = logging.getLogger(__name__)


# --- model server ----------------------------------------------------------------------------------
def ensure_archive(model: str, store: Path = MODEL_STORE, name: str | None = None, **build: Any) -> Path:
    """`<store>/<name>.mar`, built when missing or older than the handler code."""
    from lookalike.serving import archive  # torch and the handler: only where an archive is built

    mar = Path(store) / f"{name or model}.mar"
    if archive.is_stale(mar):
        logger.info("building %s (missing or older than the handler code) ...", mar)
        archive.build(model, store, name=name, **build)
    return mar


def start_torchserve(
    models: dict[str, str] | list[str],
    store: Path = MODEL_STORE,
    run_dir: Path = RUN_DIR / "torchserve",
    ports: dict[str, int] | None = None,
    timeout: float = 300.0,
    **options: Any,
) -> TorchServe:
    """A running TorchServe serving `models` (names, or name -> .mar file). Reuses the instance
    already running from `run_dir`; `ports=None` means the default ports, `free_ports(PORT_KEYS)` fresh ones."""
    if not isinstance(models, dict):
        models = {name: f"{name}.mar" for name in models}
    server = TorchServe(models, Path(store), Path(run_dir), ports or dict(TORCHSERVE_PORTS), **options)
    if server.pid() is None:
        server.start(timeout)
    return server


@contextmanager
def torchserve(models: dict[str, str] | list[str], store: Path, run_dir: Path, **options: Any) -> Iterator[TorchServe]:
    """A TorchServe on free ports for the length of a `with` block (benchmarks, tests)."""
    server = start_torchserve(models, store, run_dir, free_ports(PORT_KEYS), **options)
    try:
        yield server
    finally:
        server.stop()


# --- index -----------------------------------------------------------------------------------------
@dataclass
class Connected:
    """A model client and the index opened for the model it serves."""

    settings: Settings
    client: ModelClient
    info: ModelInfo
    index: VectorIndex

    def close(self) -> None:
        self.index.close()
        self.client.close()


def connect(settings: Settings, pair: live.Pair | None = None) -> Connected:
    """Ask the model server what it serves (model id, dimension), then open the index for it. The
    endpoint and index are the catalogue's live pair where a rollout recorded one (lookalike.index.live;
    else the configured endpoint's), or `pair`."""
    if pair is None and not settings.index:
        pair = live.read(settings).live
    if pair is not None:
        settings = pair.settings(settings)
    client = ModelClient.from_settings(settings)
    try:
        info = client.info()
        return Connected(settings, client, info, open_index(settings, info.model, info.dimension))
    except BaseException:
        client.close()
        raise


def photo_items(photos: dict[str, bytes], folder: Path, category: str | None = None, named: bool = False,
                tags: tuple[str, ...] = ()) -> list[Item]:  # fmt: skip
    """Write `photos` (name -> bytes) as `folder/<name>.jpg`; the ingest items for them
    (id = the name when `named`, else the SHA-256 of the bytes, as ingest does)."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for name, data in photos.items():
        path = folder / f"{name}.jpg"
        if not path.exists():
            path.write_bytes(data)
        items.append(Item(source=str(path), id=name if named else None, category=category, tags=list(tags)))
    return items


def ingest(settings: Settings, items: list[Item], progress: bool = False) -> Report:
    """Embed and index `items` into the index for the served model; the ingest report."""
    connected = connect(settings)
    try:
        return Ingestor(settings, connected.index, connected.info).run(items, len(items), progress=progress)
    finally:
        connected.close()


def stop_all(run_dir: Path = RUN_DIR) -> list[str]:
    """Stop what `lookalike demo` / `serve` / `api` started from `run_dir`; what was stopped."""
    stopped = []
    if stop_api(run_dir / "api" / "api.pid"):
        stopped.append("search API")
    server = TorchServe({}, MODEL_STORE, run_dir / "torchserve")
    if server.pid() is not None:
        server.stop()
        stopped.append("TorchServe")
    return stopped
