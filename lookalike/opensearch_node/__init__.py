"""A real local OpenSearch 2.19 (or 3.5) with k-NN, from Maven Central: fetch and check the pinned
artifacts (maven.py), install (install.py), find a Java it can run on (java.py), run nodes
(node.py), plain or secured (security.py: TLS, users, roles) or with ml-commons (ml.py), each kind
in its own folder (kinds.py). `lookalike opensearch` and the tests use it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lookalike.opensearch_node import ml, security
from lookalike.opensearch_node.install import DEFAULT_VERSION, RELEASES, Installation, cache_dir, install_node, release
from lookalike.opensearch_node.java import find_java
from lookalike.opensearch_node.kinds import KINDS, Kind, kind_of
from lookalike.opensearch_node.node import (
    PORT_FILE,
    USER,
    VERSION_FILE,
    LocalNode,
    NodeConfig,
    cluster,
    describe_listener,
    health,
    port_free,
)
from lookalike.ports import free_port

__all__ = [
    "DEFAULT_VERSION",
    "KINDS",
    "RELEASES",
    "USER",
    "Installation",
    "Kind",
    "LocalNode",
    "NodeConfig",
    "cache_dir",
    "cluster",
    "describe_listener",
    "find_java",
    "health",
    "install_node",
    "kind_of",
    "local_node",
    "ml",
    "port_free",
    "prepare",
    "security",
    "throwaway_node",
]  # fmt: skip


def prepare(say=print, secure: bool = False, version: str = DEFAULT_VERSION, with_ml: bool = False,
            ) -> tuple[Installation, Path]:  # fmt: skip
    """(the installation, the Java home to run it with: picked by the version's major), installing on
    first use; `secure`: the tree with the security plugin; `with_ml`: the tree with ml-commons."""
    java_home = find_java(major=release(version).major)
    return install_node(java_home, say=say, security=secure, version=version, ml=with_ml), java_home


def local_node(home: Path | None = None, http_port: int | None = None, transport_port: int | None = None,
               installed: bool = True, say=print, secure: bool | None = None,
               version: str | None = None, with_ml: bool | None = None) -> LocalNode:  # fmt: skip
    """The single node kept in `home` (None: the default folder of the kind the flags name), not
    started; `installed` installs it on first use (needed to start it, not to stop it or ask its
    status). `secure` / `with_ml` / `version` None: as the node was made (a secured node keeps its
    secrets in `home`, a node with ml-commons its ml.ML_FILE, every node its version)."""
    if home is None:
        home = kind_of(bool(secure), bool(with_ml), version).home
    home = home.resolve()  # the node runs in its own folder: a relative --dir would point elsewhere from there
    if secure is None:
        secure = (home / security.SECRETS).is_file()
    if with_ml is None:
        with_ml = (home / ml.ML_FILE).is_file()
    version = version or made_version(home) or DEFAULT_VERSION
    installation, java_home = prepare(say, secure, version, with_ml) if installed else (None, None)
    port = (http_port or int(os.environ.get("OPENSEARCH_PORT") or 0) or started_port(home)
            or kind_of(secure, with_ml, version).port)  # fmt: skip
    config = NodeConfig("local", home, port, transport_port or free_port(), secure=secure, ml=with_ml)
    return LocalNode(config, installation, java_home)


def made_version(home: Path) -> str | None:
    """The OpenSearch version the node in `home` was made with (its data is that version's)."""
    try:
        return (home / VERSION_FILE).read_text().strip() or None
    except OSError:
        return None


def started_port(home: Path) -> int | None:
    """The HTTP port the node in `home` was last started on (so `env`, `status` and `stop` find it)."""
    try:
        return int((home / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


@contextmanager
def throwaway_node(name: str, heap: str = "1g", secure: bool = False, version: str = DEFAULT_VERSION,
                   with_ml: bool = False) -> Iterator[LocalNode]:  # fmt: skip
    """A started node of its own cluster `name` on free ports, its data in a temporary folder; stopped
    and removed on exit (benchmarks). `secure`: TLS, users and roles (security.py); its client
    settings are `security.client_environment(node.url, node.config.home)`. `with_ml`: ml-commons."""
    with tempfile.TemporaryDirectory(prefix=f"lookalike-{name}-") as tmp_name:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)  # the node runs as its own user
        installation, java_home = prepare(secure=secure, version=version, with_ml=with_ml)
        config = NodeConfig(name, tmp / "node", free_port(), free_port(), cluster=name, heap_min=heap, heap_max=heap,
                            secure=secure, index_patterns=("bench-*",), ml=with_ml)  # fmt: skip
        config.home.mkdir()
        node = LocalNode(config, installation, java_home).start()
        try:
            yield node
        finally:
            node.stop()
