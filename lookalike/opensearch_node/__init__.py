"""A real local OpenSearch 2.19 with k-NN, from Maven Central: install (install.py), find a Java
it can run on (java.py), and run nodes (node.py). `lookalike opensearch` and the tests use it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lookalike.opensearch_node.install import Installation, cache_dir, install_node
from lookalike.opensearch_node.java import find_java
from lookalike.opensearch_node.node import USER, LocalNode, NodeConfig, cluster, describe_listener, health, port_free
from lookalike.settings import RUN_DIR

DEFAULT_PORT = 9200
NODE_DIR = RUN_DIR / "opensearch"  # make opensearch: config, data, logs, pid

__all__ = [
    "DEFAULT_PORT",
    "NODE_DIR",
    "USER",
    "Installation",
    "LocalNode",
    "NodeConfig",
    "cache_dir",
    "cluster",
    "describe_listener",
    "find_java",
    "health",
    "install_node",
    "local_node",
    "port_free",
    "prepare",
    "throwaway_node",
]  # fmt: skip


def prepare(say=print) -> tuple[Installation, Path]:
    """(the installation, the Java home to run it with), installing on first use."""
    java_home = find_java()
    return install_node(java_home, say=say), java_home


def local_node(home: Path = NODE_DIR, http_port: int | None = None, transport_port: int | None = None,
               installed: bool = True, say=print) -> LocalNode:  # fmt: skip
    """The single node kept in `home`, not started; `installed` installs it on first use (needed to
    start it, not to stop it or ask its status)."""
    from lookalike.stack import free_port

    installation, java_home = prepare(say) if installed else (None, None)
    port = http_port or int(os.environ.get("OPENSEARCH_PORT") or DEFAULT_PORT)
    config = NodeConfig("local", home, port, transport_port or free_port())
    return LocalNode(config, installation, java_home)


@contextmanager
def throwaway_node(name: str, heap: str = "1g") -> Iterator[LocalNode]:
    """A started node of its own cluster `name` on free ports, its data in a temporary folder; stopped
    and removed on exit (benchmarks)."""
    from lookalike.stack import free_port

    with tempfile.TemporaryDirectory(prefix=f"lookalike-{name}-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # the node runs as its own user
        installation, java_home = prepare()
        config = NodeConfig(name, tmp / "node", free_port(), free_port(), cluster=name, heap_min=heap, heap_max=heap)
        config.home.mkdir()
        node = LocalNode(config, installation, java_home).start()
        try:
            yield node
        finally:
            node.stop()
