"""Start, wait for, and stop one TorchServe instance with its own run dir, ports and logs.

Every instance gets its own TEMP/TMPDIR (pid file, unpacked archives, worker sockets),
log dir and config under `run_dir`, so tests and a dev server never collide. Workers get
our handler overrides (`LOOKALIKE_HANDLER_*`) explicitly and no other `LOOKALIKE_*` variable.
`lookalike serve` / `lookalike stop` run it from the command line.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from lookalike.resources import asset
from lookalike.settings import ENV_PREFIX, MODEL_STORE, RUN_DIR, TORCHSERVE_PORTS, worker_environment

BASE_CONFIG = asset("model_store", "config.properties")
LOG_CONFIG = asset("model_store", "log4j2.xml")
PORT_KEYS = tuple(TORCHSERVE_PORTS)

logger = logging.getLogger(__name__)


class ServerError(Exception):
    """TorchServe did not start or stop; the message carries the log tail."""


def read_properties(path: Path) -> dict[str, str]:
    """A Java .properties file as an ordered dict (no multi-line values; we write none)."""
    props: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, _, value = line.partition("=")
        props[key.strip()] = value.strip().replace("\\\\", "\\")
    return props


def write_properties(path: Path, props: dict[str, str]) -> None:
    """Write `props`, doubling backslashes as the .properties format requires."""
    lines = [f"{key}={value}".replace("\\", "\\\\") for key, value in props.items()]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class TorchServe:
    """One TorchServe instance. `models` maps a model name to its `.mar` file name in `store`."""

    models: dict[str, str]
    store: Path = MODEL_STORE
    run_dir: Path = RUN_DIR / "torchserve"
    ports: dict[str, int] = field(default_factory=lambda: dict(TORCHSERVE_PORTS))
    token_auth: bool = False
    extra: dict[str, str] = field(default_factory=dict)  # more config.properties keys
    env: dict[str, str] = field(default_factory=dict)  # worker overrides (LOOKALIKE_HANDLER_*) on top of ours

    @property
    def inference_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['inference']}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['management']}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['metrics']}"

    @property
    def key_file(self) -> Path:
        return self.run_dir / "key_file.json"

    def keys(self) -> dict[str, str]:
        """The bearer keys TorchServe wrote ({"inference": ..., "management": ...}); empty without auth."""
        if not self.token_auth or not self.key_file.exists():
            return {}
        try:
            doc = json.loads(self.key_file.read_text())
        except ValueError:  # TorchServe is still writing it
            return {}
        return {kind: doc[kind]["key"] for kind in ("inference", "management") if kind in doc}

    def config(self) -> dict[str, str]:
        props = read_properties(BASE_CONFIG)
        props.update(
            inference_address=self.inference_url,
            management_address=self.management_url,
            metrics_address=self.metrics_url,
            grpc_inference_port=str(self.ports["grpc_inference"]),
            grpc_management_port=str(self.ports["grpc_management"]),
            model_store=str(self.store.resolve()),
            load_models=",".join(f"{name}={mar}" for name, mar in self.models.items()),
            # \Q...\E quotes the path literally in Java's regex syntax.
            allowed_urls=f"^file://\\Q{self.store.resolve()}\\E/[^/]+\\.mar$",
            disable_token_authorization="false" if self.token_auth else "true",
            python=sys.executable,
            vmargs=f"-Dlog4j.configurationFile=file://{LOG_CONFIG} -Xmx1g -XX:+UseContainerSupport",
        )
        props.update(self.extra)
        return props

    def _environ(self) -> dict[str, str]:
        tmp = self.run_dir / "tmp"
        logs = self.run_dir / "logs"
        env = {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}
        env.update(worker_environment())
        env.update(
            TEMP=str(tmp),
            TMPDIR=str(tmp),
            LOG_LOCATION=str(logs),
            METRICS_LOCATION=str(logs),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        )
        env.update(self.env)
        return env

    def start(self, timeout: float = 180.0) -> TorchServe:
        """Start and return once every model has a READY worker; raises ServerError with the log tail."""
        if self.pid() is not None:
            raise ServerError(f"TorchServe already runs from {self.run_dir} (pid {self.pid()}); stop it first")
        missing = [mar for mar in self.models.values() if not (self.store / mar).is_file()]
        if missing:  # TorchServe would start, log the failure and never become ready
            raise ServerError(f"no archive {', '.join(missing)} in {self.store}: build it first (lookalike mar)")
        shutil.rmtree(self.run_dir / "logs", ignore_errors=True)
        for sub in ("tmp", "logs"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        self.key_file.unlink(missing_ok=True)
        config = self.run_dir / "config.properties"
        write_properties(config, self.config())
        cmd = [
            str(Path(sys.executable).with_name("torchserve")),
            "--start", "--ncs",
            "--ts-config", str(config),
            "--model-store", str(self.store.resolve()),
        ]  # fmt: skip
        if not self.token_auth:
            cmd.append("--disable-token-auth")
        with open(self.run_dir / "logs" / "stdout.log", "ab") as out:
            subprocess.run(cmd, cwd=self.run_dir, env=self._environ(), stdout=out, stderr=subprocess.STDOUT, check=True)
        try:
            self.wait_ready(timeout)
        except ServerError:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.models)
        while pending:
            if time.monotonic() > deadline:
                raise ServerError(f"models {sorted(pending)} not ready after {timeout:.0f}s\n{self.log_tail()}")
            if self.pid() is None and time.monotonic() > deadline - timeout + 5:
                raise ServerError(f"TorchServe exited during start\n{self.log_tail()}")
            if self._load_failures() >= 2:
                raise ServerError(f"model workers die while loading\n{self.log_tail(60)}")
            for name in list(pending):
                if self._model_ready(name):
                    pending.discard(name)
            time.sleep(0.5)

    def _load_failures(self) -> int:
        ts_log = self.run_dir / "logs" / "ts_log.log"
        return ts_log.read_text(errors="replace").count("Load model failed") if ts_log.exists() else 0

    def _model_ready(self, name: str) -> bool:
        headers = {}
        key = self.keys().get("management")
        if self.token_auth and key is None:
            return False
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = requests.get(f"{self.management_url}/models/{name}", headers=headers, timeout=5)
        except requests.RequestException:
            return False
        if response.status_code != 200:
            return False
        workers = response.json()[0].get("workers", [])
        return any(worker.get("status") == "READY" for worker in workers)

    def pid(self) -> int | None:
        pid_file = self.run_dir / "tmp" / ".model_server.pid"
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the instance (no-op if it is not running) and wait for the process to end."""
        pid = self.pid()
        if pid is None:
            return
        subprocess.run(
            [str(Path(sys.executable).with_name("torchserve")), "--stop"],
            cwd=self.run_dir,
            env=self._environ(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.2)
        os.kill(pid, 9)

    def log_tail(self, lines: int = 40) -> str:
        chunks = []
        for name in ("ts_log.log", "model_log.log", "stdout.log"):
            path = self.run_dir / "logs" / name
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path}\n" + "\n".join(tail))
        return "\n".join(chunks) or f"(no logs in {self.run_dir / 'logs'})"

    def clean(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)
