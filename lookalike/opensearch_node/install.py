"""Install the local OpenSearch node: pinned artifacts from Maven Central, checked, assembled once.

    downloads/      what opensearch/pom.xml names, each checked against opensearch/checksums.sha256
    opensearch-<v>/ the integ-test distribution + modules/lang-painless (assembled) + the k-NN plugin
    opensearch-<v>-security/  the same + the security plugin (a secured node: --secure)
    opensearch-<v>-ml/        the same + job-scheduler and ml-commons (--ml; opensearch/ml/, 2.19.1 only)

Two releases (RELEASES): 2.19.1 (the default; opensearch/pom.xml) and 3.5.0 (opensearch/3.5.0/,
`--version 3.5.0`: its integ-test zip ships lang-painless, it runs on Java 21+, and no security
plugin of it is on Maven Central).

Both live in a cache outside the repository (`cache_dir`); a second install finds them there and
needs no network. The tree is built beside its final place and renamed into it, so an interrupted
install leaves nothing half-done behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import NodeError
from lookalike.resources import asset
from lookalike.settings import Settings

MARKER = ".lookalike-install.json"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


@dataclass(frozen=True)
class Pins:
    """A set of pinned artifacts: a pom.xml naming them and the checksums.sha256 beside it."""

    folder: tuple[str, ...]  # under the opensearch/ assets

    @property
    def pom(self) -> Path:
        return asset("opensearch", *self.folder, "pom.xml")

    @property
    def checksums(self) -> Path:
        return asset("opensearch", *self.folder, "checksums.sha256")


ML_PINS = Pins(("ml",))  # job-scheduler and ml-commons 2.19.1.0 (no 3.5.0.0 of either is on Maven Central)


@dataclass(frozen=True)
class Release:
    """One OpenSearch version we install: what its POM pins, and how its tree is assembled."""

    version: str
    folder: tuple[str, ...]  # its pom.xml and checksums.sha256, under the opensearch/ assets
    assemble_painless: bool  # the 2.19 integ-test zip lacks modules/lang-painless; 3.x ships it
    security: bool  # the security plugin of this version is pinned (3.5.0.0 is not on Maven Central)
    strict_checksums: bool  # Maven Central carries checksums for every file (not for the 3.5.0 zip)
    ml: bool = False  # ml-commons of this version is pinned (opensearch/ml/)

    @property
    def pins(self) -> Pins:
        return Pins(self.folder)

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def downloads(self, cache: Path) -> Path:
        return cache / ("downloads" if self.version == DEFAULT_VERSION else f"downloads-{self.version}")

    @property
    def distribution(self) -> str:
        return f"opensearch-{self.version}.zip"

    @property
    def knn_plugin(self) -> str:
        return f"opensearch-knn-{self.version}.0.zip"

    @property
    def security_plugin(self) -> str:
        return f"opensearch-security-{self.version}.0.zip"

    @property
    def ml_plugins(self) -> tuple[str, str]:
        """job-scheduler first: ml-commons extends it."""
        return f"opensearch-job-scheduler-{self.version}.0.zip", f"opensearch-ml-plugin-{self.version}.0.zip"


DEFAULT_VERSION = "2.19.1"
RELEASES = {
    "2.19.1": Release("2.19.1", (), assemble_painless=True, security=True, strict_checksums=True, ml=True),
    "3.5.0": Release("3.5.0", ("3.5.0",), assemble_painless=False, security=False, strict_checksums=False),
}
PAINLESS_FILES = asset("opensearch", "lang-painless")


def release(version: str) -> Release:
    if version not in RELEASES:
        raise NodeError(f"OpenSearch {version} is not one we install; choose one of {', '.join(RELEASES)}")
    return RELEASES[version]


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """LOOKALIKE_OPENSEARCH_CACHE, else a system cache when root (the node's own user cannot
    enter /root), else ~/.cache/lookalike/opensearch."""
    environ = dict(os.environ if environ is None else environ)
    chosen = Settings.from_env(environ).opensearch_cache
    if chosen is not None:
        return chosen
    if os.geteuid() == 0:
        return Path("/var/cache/lookalike/opensearch")
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookalike" / "opensearch"


@dataclass(frozen=True)
class Installation:
    home: Path  # OPENSEARCH_HOME: bin/, lib/, modules/, plugins/
    knn_native: bool  # does the k-NN plugin carry its JNI libraries (faiss/nmslib)?
    security: bool = False  # is the security plugin installed (a node of it must be configured secured)?
    version: str = "2.19.1"
    ml: bool = False  # are job-scheduler and ml-commons installed?

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def launcher(self) -> Path:
        return self.home / "bin" / "opensearch"


def pinned(pins: Pins | None = None) -> dict[str, str]:
    """file name -> sha256, from the checksums.sha256 of a set of pins (the default release's)."""
    checksums = (pins or RELEASES[DEFAULT_VERSION].pins).checksums
    lines = (line.split() for line in checksums.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in lines}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(downloads: Path, delete_bad: bool = True, pins: Pins | None = None) -> list[str]:
    """The pinned files missing from `downloads`; raises on a checksum mismatch (after deleting it)."""
    missing = []
    for name, want in pinned(pins).items():
        path = downloads / name
        if not path.is_file():
            missing.append(name)
            continue
        got = sha256(path)
        if got != want:
            if delete_bad:
                path.unlink()
            raise NodeError(f"{path}: sha256 {got} is not the pinned {want} (opensearch/.../checksums.sha256); "
                            "the file was deleted, run the install again")  # fmt: skip
    return missing


def fetch(downloads: Path, say=print, maven_args: tuple[str, ...] = (), chosen: Release | None = None,
          pins: Pins | None = None) -> None:  # fmt: skip
    """Download what the release's pom.xml pins (or `pins`, of that release) into `downloads` with
    Maven, printing progress. `maven_args`: more mvn options, e.g. `-s settings.xml` for a mirror or
    proxy. Maven checks each file against Central's checksum where Central has one (-C); ours are
    checked after."""
    chosen = chosen or RELEASES[DEFAULT_VERSION]
    pins = pins or chosen.pins
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError("Maven (mvn) is needed to fetch OpenSearch from Maven Central: apt-get install -y maven")
    downloads.mkdir(parents=True, exist_ok=True)
    strict = ["-C"] if chosen.strict_checksums else []
    command = [mvn, "-B", *strict, *maven_args, "-f", str(pins.pom), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
               "-DexcludeTransitive=true", f"-DoutputDirectory={downloads}"]  # fmt: skip
    what = "ml-commons and job-scheduler" if pins == ML_PINS else "its plugins"
    say(f"fetching OpenSearch {chosen.version}'s {what} from Maven Central into {downloads} ...")
    wanted = set(pinned(pins))
    errors: list[str] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        line = re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip()).removeprefix("[INFO] ")
        done = re.match(r"Downloaded from \S+: (\S+) \((.+)\)", line)
        if done and Path(done.group(1)).name in wanted:
            say(f"  {Path(done.group(1)).name}: {done.group(2)}")
        elif line.startswith("Downloading from") and Path(line.split()[-1]).name in wanted:
            say(f"  downloading {Path(line.split()[-1]).name} ...")
        elif line.startswith("[ERROR]"):
            errors.append(line)
    if process.wait() != 0:
        detail = "\n".join(errors[:6]) or "(no [ERROR] lines)"
        unreachable = re.search(r"transfer|connect|resolve|UnknownHost|timed out|Network", detail, re.I)
        head = "Maven Central is unreachable" if unreachable else "Maven could not fetch the pinned artifacts"
        raise NodeError(f"{head} (proxy or mirror: ~/.m2/settings.xml).\n  command: {' '.join(command)}\n"
                        f"{detail}")  # fmt: skip


def assemble_painless(home: Path, downloads: Path) -> None:
    """modules/lang-painless: the lang-painless jar, its runtime jars not already in lib/, and our
    plugin descriptor and security policy (k-NN extends lang-painless; the 2.19 integ-test zip
    lacks it)."""
    module = home / "modules" / "lang-painless"
    module.mkdir(parents=True)
    in_lib = {path.name for path in (home / "lib").glob("*.jar")}
    for name in pinned():
        if name.endswith(".jar") and name not in in_lib:
            shutil.copy2(downloads / name, module / name)
    for path in PAINLESS_FILES.iterdir():
        shutil.copy2(path, module / path.name)


def install_node(java_home: Path, cache: Path | None = None, say=print, security: bool = False,
                 version: str = DEFAULT_VERSION, ml: bool = False) -> Installation:  # fmt: skip
    """The installed node of `version` (installing it first if needed), with the security plugin if
    `security`, with job-scheduler and ml-commons if `ml` (each combination a tree of its own).
    Offline once `cache` holds it."""
    chosen = release(version)
    if security and not chosen.security:
        raise NodeError(f"no security plugin is pinned for OpenSearch {version} (opensearch-security "
                        f"{version}.0 is not on Maven Central); a secured node runs {DEFAULT_VERSION}")  # fmt: skip
    if ml and not chosen.ml:
        raise NodeError(f"no ml-commons is pinned for OpenSearch {version} (opensearch-ml-plugin {version}.0 is not "
                        f"on Maven Central); a node with ml-commons runs {DEFAULT_VERSION}")  # fmt: skip
    if ml and security:
        raise NodeError("a local node has either the security plugin or ml-commons, not both yet: start the ml "
                        "node without --secure (docs/opensearch.md says what a secured cluster needs)")  # fmt: skip
    cache = cache or cache_dir()
    home = cache / f"opensearch-{version}{'-security' if security else ''}{'-ml' if ml else ''}"
    stamp = {"version": version, "checksums": sha256(chosen.pins.checksums), "painless": _painless_digest(),
             "security": security, "ml": sha256(ML_PINS.checksums) if ml else False}  # fmt: skip
    marker = home / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if all(recorded.get(key, False) == value for key, value in stamp.items()):
            return Installation(home, bool(recorded.get("knn_native")), security, version, ml)
    downloads = chosen.downloads(cache)
    for pins in (chosen.pins, ML_PINS) if ml else (chosen.pins,):
        if verify(downloads, pins=pins):
            fetch(downloads, say, chosen=chosen, pins=pins)
            missing = verify(downloads, pins=pins)
            if missing:
                raise NodeError(f"Maven finished but these are still missing from {downloads}: {', '.join(missing)}")
    say(f"installing OpenSearch {version} into {home} ...")
    staging = cache / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with zipfile.ZipFile(downloads / chosen.distribution) as archive:
        archive.extractall(staging)
    tree = staging / f"opensearch-{version}"
    for script in (tree / "bin").iterdir():
        script.chmod(0o755)
    if chosen.assemble_painless:
        assemble_painless(tree, downloads)
    _install_plugin(tree, downloads / chosen.knn_plugin, java_home)
    if security:
        _install_plugin(tree, downloads / chosen.security_plugin, java_home)
    if ml:
        for plugin in chosen.ml_plugins:
            say(f"  installing {plugin} ...")
            _install_plugin(tree, downloads / plugin, java_home)
    knn_native = any((tree / "plugins" / "opensearch-knn").rglob("*.so"))
    (tree / MARKER).write_text(json.dumps({**stamp, "knn_native": knn_native}, indent=2))
    _readable(tree)
    shutil.rmtree(home, ignore_errors=True)
    tree.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    _readable(cache)
    say(
        f"installed: {home} (k-NN native libraries: {'yes' if knn_native else 'no, Lucene engine only'}"
        f"{'; security plugin' if security else ''}{'; ml-commons' if ml else ''})"
    )
    return Installation(home, knn_native, security, version, ml)


def _install_plugin(tree: Path, plugin: Path, java_home: Path) -> None:
    environ = {**os.environ, "OPENSEARCH_JAVA_HOME": str(java_home), "JAVA_HOME": str(java_home),
               "OPENSEARCH_PATH_CONF": str(tree / "config")}  # fmt: skip
    done = subprocess.run([str(tree / "bin" / "opensearch-plugin"), "install", "--batch", plugin.as_uri()],
                          env=environ, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise NodeError(f"opensearch-plugin install {plugin.name} failed:\n{(done.stdout + done.stderr)[-2000:]}")


def _painless_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(PAINLESS_FILES.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _readable(root: Path) -> None:
    """World-readable (and directories enterable): the node runs as its own user, not as root."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


if __name__ == "__main__":  # pragma: no cover - a quick manual check
    from lookalike.opensearch_node.java import find_java

    print(install_node(find_java(), say=lambda text: print(text, file=sys.stderr)))
