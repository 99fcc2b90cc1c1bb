"""Run the search API in the background (for `make demo`) and stop it (`make stop`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import requests

from .settings import REPO

RUN_DIR = REPO / "run" / "api"
PID_FILE = RUN_DIR / "api.pid"


def running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start(port: int = 8000, extra_args: list[str] | None = None, timeout: float = 60.0) -> str:
    """Start `python -m opensearch.api` detached; return its URL once /healthz answers."""
    url = f"http://127.0.0.1:{port}"
    if running_pid():
        return url
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    log = open(RUN_DIR / "api.log", "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        [sys.executable, "-m", "opensearch.api", "--port", str(port), *(extra_args or [])],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    PID_FILE.write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}; see {RUN_DIR / 'api.log'}")
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                return url
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop()
    raise RuntimeError(f"the API did not become healthy in {timeout:.0f}s; see {RUN_DIR / 'api.log'}")


def stop() -> bool:
    pid = running_pid()
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    PID_FILE.unlink(missing_ok=True)
    return True


if __name__ == "__main__":
    print("search API stopped" if stop() else "search API was not running")
