"""The search API as a process: in a thread of this one (tests, benchmarks) or detached with a pid
file (`lookalike demo`, `lookalike api` started for the stack), started, awaited and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from lookalike.api.app import create_app
from lookalike.ports import free_port
from lookalike.settings import RUN_DIR, Settings

API_RUN_DIR = RUN_DIR / "api"
API_PID_FILE = API_RUN_DIR / "api.pid"


class ApiThread:
    """The API (uvicorn) on a free loopback port inside this process: tests and benchmarks."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
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
    env = {**os.environ, **settings_environment(settings), "LOOKALIKE_DRAIN_GRACE": "0"}  # no balancer to wait for
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
