"""A Maven repository on loopback that serves no checksum files, as the registry does for some zips.

It serves the artifacts a test makes (in `root`, Maven's layout), and for every other path the
files of `seed`: a Maven repository holding the dependency plugin our installer runs, so that
Maven can start from an empty repository of its own. Every request is recorded.
"""

from __future__ import annotations

import fcntl
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lookalike.opensearch_node.maven import DEPENDENCY_PLUGIN, Artifact, sha256

CHECKSUM_SUFFIXES = (".sha1", ".md5", ".sha256", ".sha512", ".asc")
PLUGIN_JAR = "org/apache/maven/plugins/maven-dependency-plugin/3.6.1/maven-dependency-plugin-3.6.1.jar"
POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.lookalike.test</groupId>
  <artifactId>pins</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
{dependencies}
  </dependencies>
</project>
"""
DEPENDENCY = """    <dependency>
      <groupId>{a.group}</groupId>
      <artifactId>{a.name}</artifactId>
      <version>{a.version}</version>
      <type>{a.kind}</type>
    </dependency>"""


def pom_for(artifacts: list[Artifact]) -> str:
    return POM.format(dependencies="\n".join(DEPENDENCY.format(a=artifact) for artifact in artifacts))


def seeded(seed: Path) -> Path:
    """`seed` holding the dependency plugin and all it needs: fetched once through the user's own
    Maven set-up (a copy-dependencies run of a POM with no dependencies resolves exactly the
    plugin our installer runs), under a lock so parallel test workers seed it once."""
    seed.mkdir(parents=True, exist_ok=True)
    with (seed.parent / f"{seed.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (seed / PLUGIN_JAR).is_file():
            with tempfile.TemporaryDirectory() as tmp:
                pom = Path(tmp) / "pom.xml"
                pom.write_text(pom_for([]))
                done = subprocess.run(["mvn", "-B", "-q", "-c", f"-Dmaven.repo.local={seed}", "-f", str(pom),
                                       f"{DEPENDENCY_PLUGIN}:copy-dependencies"],
                                      capture_output=True, text=True, timeout=600)  # fmt: skip
            if done.returncode != 0:
                raise RuntimeError(f"seeding the dependency plugin failed:\n{done.stdout[-2000:]}")
    return seed


@dataclass
class LoopbackRegistry:
    root: Path  # the test's own artifacts
    seed: Path  # everything else Maven asks for (the dependency plugin)
    requests: list[str] = field(default_factory=list)

    def publish(self, artifact: Artifact, content: bytes) -> str:
        """Put `artifact` (and a POM for it) in the registry, no checksum files; its SHA-256."""
        path = artifact.path_in(self.root)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.with_name(f"{artifact.name}-{artifact.version}.pom").write_text(
            f"<project><modelVersion>4.0.0</modelVersion><groupId>{artifact.group}</groupId><artifactId>"
            f"{artifact.name}</artifactId><version>{artifact.version}</version></project>"
        )
        return sha256(path)

    def __enter__(self) -> LoopbackRegistry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                relative = self.path.split("?")[0].removeprefix("/maven2/").lstrip("/")
                found = None
                if not relative.endswith(CHECKSUM_SUFFIXES) and ".." not in relative:
                    found = next((base / relative for base in (registry.root, registry.seed)
                                  if (base / relative).is_file()), None)  # fmt: skip
                if found is None:
                    self.send_error(404)
                    return
                body = found.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/maven2"

    def settings(self, folder: Path) -> Path:
        """A settings.xml whose mirror sends every Maven request here."""
        path = folder / "settings.xml"
        path.write_text(f"<settings><mirrors><mirror><id>loopback</id><mirrorOf>*</mirrorOf><url>{self.url}</url>"
                        "</mirror></mirrors></settings>")  # fmt: skip
        return path


def small_zip(folder: Path, name: str, text: str) -> bytes:
    """A small real zip holding one text file."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", text)
    return path.read_bytes()
