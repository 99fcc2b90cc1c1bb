"""Run local OpenSearch nodes from an installation: config from opensearch/node/, one directory each.

A node's directory holds config/, data/, logs/, its pid file and its console output. As root the
node runs as the system user `lookalike-os` (OpenSearch refuses root), which owns that directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from lookalike.errors import NodeError
from lookalike.opensearch_node import ml, security
from lookalike.opensearch_node.install import Installation
from lookalike.opensearch_node.java import has_module
from lookalike.ports import free_port
from lookalike.resources import asset

USER = "lookalike-os"
PORT_FILE = "http.port"  # in the node's home: the port it was last started on
VERSION_FILE = "opensearch.version"  # in the node's home: the version its data was made with
TEMPLATES = asset("opensearch", "node")
HEALTHY = ("yellow", "green")


@dataclass(frozen=True)
class NodeConfig:
    name: str
    home: Path  # the node's own directory
    http_port: int
    transport_port: int
    cluster: str = "lookalike"
    seeds: tuple[int, ...] = ()  # transport ports of every node of a cluster; () = single node
    managers: tuple[str, ...] = ()  # names of the nodes that bootstrap the cluster manager election
    roles: tuple[str, ...] | None = None  # None: every role
    heap_min: str = "512m"
    heap_max: str = "1g"
    secure: bool = False  # TLS, users and roles (security.py); needs an installation with the plugin
    index_patterns: tuple[str, ...] = ("lookalike*",)  # secure: where the `lookalike` user may work
    ml: bool = False  # ml-commons settings for a model server on loopback (ml.py); needs an installation with it

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.http_port}"


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def describe_listener(url: str) -> str | None:
    """'OpenSearch 2.19.1 (cluster x)' if an OpenSearch answers at `url`, else None."""
    try:
        info = httpx.get(url, timeout=2).json()
        return f"OpenSearch {info['version']['number']} (cluster {info['cluster_name']})"
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def health(url: str, timeout: float = 2, auth: tuple[str, str] | None = None, ca_file: Path | None = None,
           ) -> dict | None:  # fmt: skip
    """The cluster's health, or None if it does not answer (yet)."""
    try:
        verify = ssl.create_default_context(cafile=str(ca_file)) if ca_file is not None else True
        response = httpx.get(f"{url}/_cluster/health", timeout=timeout, auth=auth, verify=verify)
        return response.json() if response.status_code in (200, 408) else None
    except (httpx.HTTPError, ValueError, OSError):
        return None


def run_as() -> list[str]:
    """The command prefix that runs the node as `USER` (creating it) when we are root, else nothing."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(USER)
    except KeyError:
        made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                              capture_output=True, text=True)  # fmt: skip
        if made.returncode != 0:
            raise NodeError(f"OpenSearch cannot run as root and creating user {USER} failed: {made.stderr}") from None
    return ["runuser", "-u", USER, "--"]


class LocalNode:
    def __init__(self, config: NodeConfig, installation: Installation | None, java_home: Path | None) -> None:
        self.config, self.installation, self.java_home = config, installation, java_home
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def pid_file(self) -> Path:
        return self.config.home / "opensearch.pid"

    @property
    def console(self) -> Path:
        return self.config.home / "console.log"

    # -- files --------------------------------------------------------------------------------
    def write_config(self) -> None:
        cfg, installation = self.config, self._installation()
        conf, data, logs = cfg.home / "config", cfg.home / "data", cfg.home / "logs"
        for folder in (conf / "jvm.options.d", data, logs):
            folder.mkdir(parents=True, exist_ok=True)
        if cfg.seeds:
            seeds = ", ".join(f'"127.0.0.1:{port}"' for port in cfg.seeds)
            managers = ", ".join(cfg.managers)
            discovery = f"discovery.seed_hosts: [{seeds}]\ncluster.initial_cluster_manager_nodes: [{managers}]"
        else:
            discovery = "discovery.type: single-node"
        if cfg.roles is not None:
            discovery += f"\nnode.roles: [{', '.join(cfg.roles)}]"
        values = {"cluster": cfg.cluster, "name": cfg.name, "data": data, "logs": logs, "http_port": cfg.http_port,
                  "transport_port": cfg.transport_port, "discovery": discovery, "heap_min": cfg.heap_min,
                  "heap_max": cfg.heap_max, "knn_native": str(installation.knn_native).lower(),
                  "install_home": installation.home, "vector_module": self._vector_module()}  # fmt: skip
        templates = {"opensearch.yml": "opensearch.yml", "jvm.options": "jvm3.options" if installation.major >= 3
                     else "jvm.options"}  # fmt: skip
        for name, template in templates.items():
            (conf / name).write_text((TEMPLATES / template).read_text().format(**values))
        shutil.copy2(installation.home / "config" / "log4j2.properties", conf / "log4j2.properties")
        if cfg.secure != installation.security:
            kind, plugin = ("secured", "with") if cfg.secure else ("plain", "without")
            raise NodeError(f"a {kind} node needs an installation {plugin} the security plugin ({installation.home})")
        if cfg.ml != installation.ml:
            raise NodeError(f"a node {'with' if cfg.ml else 'without'} ml-commons needs an installation "
                            f"{'with' if cfg.ml else 'without'} it ({installation.home})")  # fmt: skip
        if cfg.secure:
            security.secure(cfg.home, conf, list(cfg.index_patterns))
            with (conf / "opensearch.yml").open("a") as yml:
                yml.write(security.node_settings())
        if cfg.ml:
            with (conf / "opensearch.yml").open("a") as yml:
                yml.write(ml.node_settings())

    def _vector_module(self) -> str:
        """Lucene's SIMD vector code needs jdk.incubator.vector (3.x); a runtime without it runs scalar."""
        if self.java_home is not None and has_module(self.java_home, "jdk.incubator.vector"):
            return "--add-modules=jdk.incubator.vector"
        return "# jdk.incubator.vector: not in this Java runtime, so Lucene's vector code runs without SIMD"

    @property
    def ca_file(self) -> Path | None:
        """The CA a client trusts the node by (secured nodes), else None."""
        return self.config.home / "config" / security.CERTS / "ca.pem" if self.config.secure else None

    def health(self, timeout: float = 2) -> dict | None:
        auth = security.admin_auth(self.config.home) if self.config.secure else None
        return health(self.url, timeout, auth, self.ca_file)

    def _installation(self) -> Installation:
        if self.installation is None or self.java_home is None:
            raise NodeError("this node handle was made without an installation; it can only be stopped")
        return self.installation

    def _own(self, prefix: list[str]) -> None:
        if not prefix:
            return
        user = pwd.getpwnam(USER)
        for path in [self.config.home, *self.config.home.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        probe = subprocess.run([*prefix, "test", "-w", str(self.config.home)], capture_output=True)
        if probe.returncode != 0:
            raise NodeError(f"user {USER} cannot write {self.config.home} (a parent directory is closed to it, "
                            "e.g. under /root); choose a node directory it can reach "
                            "(lookalike opensearch start --dir DIR)")  # fmt: skip

    # -- life cycle ---------------------------------------------------------------------------
    def start(self, wait: bool = True, timeout: float = 180) -> LocalNode:
        cfg = self.config
        for port, what in ((cfg.http_port, "HTTP"), (cfg.transport_port, "transport")):
            if not port_free(port):
                other = describe_listener(f"http://127.0.0.1:{port}") if what == "HTTP" else None
                raise NodeError(f"{what} port {port} is taken{f' by {other}' if other else ''}; "
                                "stop it or choose another port (OPENSEARCH_PORT=...)")  # fmt: skip
        prefix = run_as()
        cfg.home.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.pid_file.unlink(missing_ok=True)
        (cfg.home / PORT_FILE).write_text(f"{cfg.http_port}\n")
        made = cfg.home / VERSION_FILE
        version = self._installation().version
        if made.is_file() and made.read_text().strip() != version:
            raise NodeError(f"the node in {cfg.home} holds OpenSearch {made.read_text().strip()} data; it cannot start "
                            f"as {version} (choose another folder)")  # fmt: skip
        made.write_text(f"{version}\n")
        if cfg.ml:
            (cfg.home / ml.ML_FILE).write_text("ml-commons and job-scheduler are installed in this node's tree\n")
        self._own(prefix)
        environ = {key: value for key, value in os.environ.items() if not key.startswith(("JAVA_TOOL", "_JAVA"))}
        environ.update(OPENSEARCH_JAVA_HOME=str(self.java_home), OPENSEARCH_PATH_CONF=str(cfg.home / "config"))
        environ.pop("JAVA_HOME", None)
        with self.console.open("ab") as console:
            self.process = subprocess.Popen(
                [*prefix, str(self._installation().launcher), "-p", str(self.pid_file)],
                cwd=cfg.home, env=environ, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 180, statuses: tuple[str, ...] = HEALTHY, nodes: int = 1) -> dict:
        """Block until the cluster answers with one of `statuses` and at least `nodes` nodes; NodeError
        with the log tail if the node exits or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise NodeError(f"OpenSearch node {self.config.name} exited with status {self.process.returncode} "
                                f"while starting:\n{self.log_tail()}")  # fmt: skip
            state = self.health()
            if state and state.get("status") in statuses and state.get("number_of_nodes", 0) >= nodes:
                return state
            if time.monotonic() > deadline:
                seen = state.get("status") if state else "no answer"
                raise NodeError(f"OpenSearch node {self.config.name} not {'/'.join(statuses)} after {timeout:.0f} s "
                                f"({seen}) at {self.url}:\n{self.log_tail()}")  # fmt: skip
            time.sleep(0.5)

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def alive(self) -> bool:
        return self.pid() is not None

    def kill(self) -> None:
        """SIGKILL: the node dies as in a crash (no shutdown, no flush)."""
        self._signal(signal.SIGKILL, timeout=30)

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM (a clean shutdown), SIGKILL if it has not exited after `timeout` seconds."""
        if not self._signal(signal.SIGTERM, timeout):
            self._signal(signal.SIGKILL, timeout=30)

    def _signal(self, sig: signal.Signals, timeout: float) -> bool:
        pid = self.pid()
        if pid is None:
            return True
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None:
                self.process.poll()
            try:
                os.kill(pid, 0)
            except OSError:
                self.pid_file.unlink(missing_ok=True)
                return True
            time.sleep(0.2)
        return False

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the node's server log (or its console output, if the JVM never got that far)."""
        server_log = self.config.home / "logs" / f"{self.config.cluster}.log"
        parts = []
        for path in (self.console, server_log):
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(parts) or f"(no log under {self.config.home})"


def cluster(installation: Installation, java_home: Path, root: Path, names: list[str], managers: int = 1,
            name: str = "lookalike") -> list[LocalNode]:  # fmt: skip
    """Nodes of one cluster on loopback, each in root/<name>. The first `managers` are
    cluster-manager eligible (and data); the others are data nodes only."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # each node's own user enters it to reach its directory
    transports = [free_port() for _ in names]
    eligible = tuple(names[:managers])
    nodes = []
    for position, node_name in enumerate(names):
        roles = None if node_name in eligible else ("data", "ingest")
        config = NodeConfig(node_name, root / node_name, free_port(), transports[position], cluster=name,
                            seeds=tuple(transports), managers=eligible, roles=roles)  # fmt: skip
        nodes.append(LocalNode(config, installation, java_home))
    return nodes
