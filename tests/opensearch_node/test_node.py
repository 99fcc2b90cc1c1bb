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

from lookalike import opensearch_node, stack
from lookalike.errors import NodeError
from lookalike.opensearch_node import install, java

JAVA_25 = Path("/usr/lib/jvm/temurin-25-jdk-amd64")


def test_a_java_too_new_for_the_security_manager_is_refused_by_name():
    if java.java_version(JAVA_25) != 25:
        pytest.skip("no Java 25 on this machine")
    with pytest.raises(NodeError, match=r"OPENSEARCH_JAVA_HOME=.*is Java 25; OpenSearch 2\.x needs Java 11-23"):
        java.find_java({"OPENSEARCH_JAVA_HOME": str(JAVA_25), "PATH": os.environ["PATH"]})
    assert java.find_java({"OPENSEARCH_JAVA_HOME": str(JAVA_25), "PATH": os.environ["PATH"]}, major=3) == JAVA_25
    assert java.java_version(java.find_java({"PATH": os.environ["PATH"]}, major=3)) >= 21  # picked by version


def test_no_usable_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(java, "JVM_DIR", tmp_path)  # no JDKs there, and no java on PATH
    with pytest.raises(NodeError, match=r"no Java for OpenSearch 2\.x.*apt-get install -y openjdk-17-jre-headless"):
        java.find_java({"PATH": str(tmp_path)})
    with pytest.raises(NodeError, match=r"no Java for OpenSearch 3\.x: it needs Java 21\+"):
        java.find_java({"PATH": str(tmp_path)}, major=3)


def test_maven_central_unreachable_is_a_clear_error(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = tmp_path / "settings.xml"
    settings.write_text(f"""<settings><mirrors><mirror><id>down</id><mirrorOf>*</mirrorOf>
        <url>http://127.0.0.1:{port}/maven2</url></mirror></mirrors></settings>""")
    args = ("-s", str(settings), f"-Dmaven.repo.local={tmp_path / 'm2'}")
    with pytest.raises(NodeError, match="Maven Central is unreachable") as caught:
        install.fetch(tmp_path / "downloads", say=lambda _: None, maven_args=args)
    assert "[ERROR]" in caught.value.reason and "command: " in caught.value.reason


def test_a_relative_node_folder_is_made_absolute(tmp_path, monkeypatch):
    """The node runs inside its folder, so `--dir run/x` given relative must not be read from there
    (it was: OpenSearch found no run/x/config under run/x). A node made with ml-commons keeps it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / "node-ml").mkdir(parents=True)
    (tmp_path / "run" / "node-ml" / opensearch_node.ml.ML_FILE).write_text("made with ml-commons\n")
    node = opensearch_node.local_node(Path("run/node-ml"), http_port=9299, installed=False)
    assert node.config.home == tmp_path / "run" / "node-ml" and node.config.home.is_absolute()
    assert node.config.ml and not node.config.secure


def test_a_corrupt_download_is_deleted_and_reported(tmp_path):
    name, _ = next(iter(install.pinned().items()))
    (tmp_path / name).write_bytes(b"not the pinned bytes")
    with pytest.raises(NodeError, match=f"{name}: sha256 .* is not the pinned"):
        install.verify(tmp_path)
    assert not (tmp_path / name).exists()


@pytest.fixture(scope="module")
def prepared(opensearch_installation):
    return opensearch_installation


def node_in(root: Path, prepared, **config) -> opensearch_node.LocalNode:
    root.chmod(0o755)
    settings = {"http_port": stack.free_port(), "transport_port": stack.free_port(), **config}
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
        where = ["--dir", str(Path(tmp) / "node"), "--port", str(stack.free_port())]

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
        secured_node_session(Path(tmp) / "node", stack.free_port())


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
