"""A first install from an empty cache: Maven fetches from a registry that serves no checksum files
(as Maven Central does for the security, job-scheduler and ml-commons zips), and our SHA-256 pins
are the only integrity check. The registry is a real HTTP server on loopback (registry.py) holding
small artifacts made here; Maven and its dependency plugin run for real."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from lookalike.errors import NodeError
from lookalike.opensearch_node import install
from lookalike.opensearch_node.maven import Artifact, Pins, fetch, sha256
from tests.opensearch_node.registry import LoopbackRegistry, pom_for, seeded, small_zip

NODE = Artifact("dev.lookalike.test", "demo-node", "1.0", "zip")
LIB = Artifact("dev.lookalike.test", "demo-lib", "1.0", "jar")


@pytest.fixture(scope="session")
def seed() -> Path:
    """Maven's repository of the OpenSearch cache, holding the dependency plugin (fetched on first use)."""
    return seeded(install.maven_repository(install.cache_dir()))


def pins_for(folder: Path, digests: dict[Artifact, str]) -> Pins:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(pom_for(list(digests)))
    (folder / "checksums.sha256").write_text("".join(f"{digest}  {a.file_name}\n" for a, digest in digests.items()))
    return Pins.beside(folder / "pom.xml", "the test's artifacts")


@pytest.mark.slow  # runs Maven (a JVM) against a loopback registry
def test_a_first_install_from_a_registry_without_checksum_files(seed, tmp_path):
    """An empty cache (so an empty Maven repository): both artifacts arrive, are held to our pins,
    each missing checksum file is a warning, and Maven's copies are dropped once checked."""
    with LoopbackRegistry(tmp_path / "registry", seed) as registry:
        digests = {NODE: registry.publish(NODE, small_zip(tmp_path, "n.zip", "node")),
                   LIB: registry.publish(LIB, small_zip(tmp_path, "l.jar", "lib"))}  # fmt: skip
        pins = pins_for(tmp_path / "pins", digests)
        cache, said = tmp_path / "cache", []
        install.ensure_downloaded(
            pins, cache / "downloads", cache, said.append, ("-s", str(registry.settings(tmp_path)))
        )
    for artifact in (NODE, LIB):
        kept = cache / "downloads" / artifact.file_name
        assert sha256(kept) == pins.digests()[artifact.file_name]
        assert (
            f"  warning: the registry serves no checksum file for {artifact.file_name}; its SHA-256 matches our pin"
            in said
        )
        assert any(path.endswith(f"{artifact.file_name}.sha1") for path in registry.requests)  # Maven asked; none came
        assert not artifact.path_in(install.maven_repository(cache)).exists()
    assert (install.maven_repository(cache) / "org/apache/maven/plugins/maven-dependency-plugin").is_dir()


@pytest.mark.slow  # runs Maven (a JVM) against a loopback registry
def test_a_tampered_artifact_is_deleted_and_refused_with_both_digests(seed, tmp_path):
    with LoopbackRegistry(tmp_path / "registry", seed) as registry:
        small_zip(tmp_path, "genuine.zip", "node")
        pinned = sha256(tmp_path / "genuine.zip")  # we pinned the genuine bytes; the registry serves others
        served = registry.publish(NODE, small_zip(tmp_path, "n.zip", "tampered"))
        pins = pins_for(tmp_path / "pins", {NODE: pinned})
        cache = tmp_path / "cache"
        with pytest.raises(NodeError) as caught:
            fetch(pins, cache / "downloads", install.maven_repository(cache), lambda _: None,
                  ("-s", str(registry.settings(tmp_path))))  # fmt: skip
    assert caught.value.reason.startswith(f"demo-node-1.0.zip: SHA-256 mismatch: expected {pinned}")
    assert f"got {served}" in caught.value.reason
    assert not (cache / "downloads" / NODE.file_name).exists()
    assert not NODE.path_in(install.maven_repository(cache)).exists()  # the next try fetches it anew


@pytest.mark.slow  # runs Maven (a JVM) against a loopback registry
def test_an_artifact_the_registry_lacks_is_named(seed, tmp_path):
    with LoopbackRegistry(tmp_path / "registry", seed) as registry:
        pins = pins_for(tmp_path / "pins", {NODE: "0" * 64})  # never published
        with pytest.raises(NodeError, match=r"^not found in the registry: dev\.lookalike\.test:demo-node:zip:1\.0"):
            fetch(
                pins, tmp_path / "downloads", tmp_path / "m2", lambda _: None, ("-s", str(registry.settings(tmp_path)))
            )


@pytest.mark.slow  # runs Maven (a JVM) against a loopback registry
def test_an_unreachable_registry_is_told_apart(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings = tmp_path / "settings.xml"
    settings.write_text(f"<settings><mirrors><mirror><id>down</id><mirrorOf>*</mirrorOf>"
                        f"<url>http://127.0.0.1:{port}/maven2</url></mirror></mirrors></settings>")  # fmt: skip
    with pytest.raises(
        NodeError, match=rf"^Maven Central is unreachable \(http://127\.0\.0\.1:{port}/maven2\)"
    ) as caught:
        fetch(install.RELEASES[install.DEFAULT_VERSION].pins, tmp_path / "downloads", tmp_path / "m2", lambda _: None,
              ("-s", str(settings)))  # fmt: skip
    assert "[ERROR]" in caught.value.reason and "command: " in caught.value.reason


def test_each_kind_of_node_fetches_only_its_own_pins():
    """A plain node never downloads the security or ml zips; every pom names exactly its checksums' files."""
    plain = install.RELEASES["2.19.1"]
    names = {pins.pom.parent.name: {a.file_name for a in pins.artifacts()} for pins in plain.pin_sets(True, True)}
    for pins in [*plain.pin_sets(True, True), install.RELEASES["3.5.0"].pins]:
        assert {a.file_name for a in pins.artifacts()} == set(pins.digests()), pins.pom
    assert [p.pom for p in plain.pin_sets()] == [plain.pins.pom]
    assert not any("security" in name or "ml-plugin" in name or "job-scheduler" in name for name in names["opensearch"])
    assert names["security"] == {"opensearch-security-2.19.1.0.zip"}
    assert names["ml"] == {"opensearch-job-scheduler-2.19.1.0.zip", "opensearch-ml-plugin-2.19.1.0.zip"}
    assert [p.pom for p in plain.pin_sets(security=True)] == [plain.pins.pom, install.SECURITY_PINS.pom]
    assert install.RELEASES["3.5.0"].pin_sets() == [install.RELEASES["3.5.0"].pins]
