"""The whole stack, assembled once: build the archive, start TorchServe, open the index, start the
API, stop them. `lookalike demo`, `lookalike loadtest`, the benchmarks and the test fixtures all
use these functions instead of repeating the sequence.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from lookalike.index import VectorIndex, open_index
from lookalike.ingest.pipeline import Ingestor, Report
from lookalike.ingest.sources import Item
from lookalike.serving import archive
from lookalike.serving.client import ModelClient, ModelInfo
from lookalike.serving.torchserve import PORT_KEYS, TorchServe
from lookalike.settings import MODEL_STORE, RUN_DIR, TORCHSERVE_PORTS, Settings

logger = logging.getLogger(__name__)
API_RUN_DIR = RUN_DIR / "api"
API_PID_FILE = API_RUN_DIR / "api.pid"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports() -> dict[str, int]:
    return {key: free_port() for key in PORT_KEYS}


# --- model server ----------------------------------------------------------------------------------
def ensure_archive(model: str, store: Path = MODEL_STORE, name: str | None = None, **build: Any) -> Path:
    """`<store>/<name>.mar`, built when missing or older than the handler code."""
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
    already running from `run_dir`; `ports=None` means the default ports, `free_ports()` fresh ones."""
    if not isinstance(models, dict):
        models = {name: f"{name}.mar" for name in models}
    server = TorchServe(models, Path(store), Path(run_dir), ports or dict(TORCHSERVE_PORTS), **options)
    if server.pid() is None:
        server.start(timeout)
    return server


@contextmanager
def torchserve(models: dict[str, str] | list[str], store: Path, run_dir: Path, **options: Any) -> Iterator[TorchServe]:
    """A TorchServe on free ports for the length of a `with` block (benchmarks, tests)."""
    server = start_torchserve(models, store, run_dir, free_ports(), **options)
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


def connect(settings: Settings) -> Connected:
    """Ask the model server what it serves (model id, dimension), then open the index for it."""
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


# --- API -------------------------------------------------------------------------------------------
class ApiThread:
    """The API (uvicorn) on a free loopback port inside this process: tests and benchmarks."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        from lookalike.api.app import create_app

        port = port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ApiThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def api_pid(pid_file: Path = API_PID_FILE) -> int | None:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_api(settings: Settings, run_dir: Path = API_RUN_DIR, timeout: float = 60.0) -> str:
    """`lookalike api` as a detached process with `settings`; its URL once /healthz answers 200.
    Reuses the one already running from `run_dir`."""
    url = f"http://{settings.api_host}:{settings.api_port}"
    pid_file = run_dir / "api.pid"
    if api_pid(pid_file):
        return url
    run_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings_environment(settings)}
    with open(run_dir / "api.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "lookalike", "api"], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}; see {run_dir / 'api.log'}")
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_api(pid_file)
    raise RuntimeError(f"the API did not become healthy in {timeout:.0f}s; see {run_dir / 'api.log'}")


def stop_api(pid_file: Path = API_PID_FILE) -> bool:
    pid = api_pid(pid_file)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    return True


def settings_environment(settings: Settings) -> dict[str, str]:
    """`settings` as the LOOKALIKE_* variables that make a child process read the same."""
    env = {}
    for name, value in vars(settings).items():
        if value is not None:
            env[f"LOOKALIKE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


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
