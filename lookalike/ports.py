"""Free TCP ports on loopback, for the servers we start on them (tests, benchmarks, throwaway nodes)."""

from __future__ import annotations

import socket
from collections.abc import Iterable


def free_port() -> int:
    """A port nothing listens on now (the OS's choice; another process may take it before we bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(keys: Iterable[str]) -> dict[str, int]:
    """A free port for each key (TorchServe's PORT_KEYS: inference, management, metrics)."""
    return {key: free_port() for key in keys}
