"""Install the local OpenSearch node: pinned artifacts from Maven Central, checked, assembled once.

    maven/          Maven's own repository for these fetches (the dependency plugin; our artifacts
                    are dropped from it once checked and copied out)
    downloads/      what the pins name, each checked against its checksums.sha256 (maven.py)
    opensearch-<v>/ the integ-test distribution + modules/lang-painless (assembled) + the k-NN plugin
    opensearch-<v>-security/  the same + the security plugin (a secured node: --secure)
    opensearch-<v>-ml/        the same + job-scheduler and ml-commons (--ml; opensearch/ml/, 2.19.1 only)

Each kind of node fetches only its own pins: a plain node the distribution, k-NN and lang-painless
(opensearch/pom.xml); a secured one adds opensearch/security/; an ml one opensearch/ml/; 3.5.0 has
its own (opensearch/3.5.0/: its integ-test zip ships lang-painless, it runs on Java 21+, and no
security plugin or ml-commons of it is on Maven Central).

Everything lives in a cache outside the repository (`cache_dir`); a second install finds it there
and needs no network. The tree is built beside its final place and renamed into it, so an
interrupted install leaves nothing half-done behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import NodeError
from lookalike.opensearch_node.maven import Pins, fetch, sha256, verify
from lookalike.resources import asset
from lookalike.settings import Settings

MARKER = ".lookalike-install.json"
DEFAULT_VERSION = "2.19.1"


def pins_in(*folder: str, what: str) -> Pins:
    """The pins kept in opensearch/<folder>/ (pom.xml and checksums.sha256)."""
    return Pins.beside(asset("opensearch", *folder, "pom.xml"), what)


SECURITY_PINS = pins_in("security", what="the security plugin 2.19.1.0")
ML_PINS = pins_in("ml", what="ml-commons and job-scheduler 2.19.1.0")


@dataclass(frozen=True)
class Release:
    """One OpenSearch version we install: what its POM pins, and how its tree is assembled."""

    version: str
    folder: tuple[str, ...]  # its pom.xml and checksums.sha256, under the opensearch/ assets
    assemble_painless: bool  # the 2.19 integ-test zip lacks modules/lang-painless; 3.x ships it
    security: bool  # the security plugin of this version is pinned (3.5.0.0 is not on Maven Central)
    ml: bool = False  # ml-commons of this version is pinned (opensearch/ml/)

    @property
    def pins(self) -> Pins:
        """The distribution, k-NN and (2.19) lang-painless: what every node of this version needs."""
        return pins_in(*self.folder, what=f"OpenSearch {self.version} with k-NN")

    def pin_sets(self, security: bool = False, ml: bool = False) -> list[Pins]:
        """Every set of pins a node of this kind needs, and no other."""
        return [self.pins, *([SECURITY_PINS] if security else []), *([ML_PINS] if ml else [])]

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


RELEASES = {
    "2.19.1": Release("2.19.1", (), assemble_painless=True, security=True, ml=True),
    "3.5.0": Release("3.5.0", ("3.5.0",), assemble_painless=False, security=False),
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


def maven_repository(cache: Path) -> Path:
    """Maven's repository for our fetches: inside the cache, so an empty cache is a first install."""
    return cache / "maven"


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


def ensure_downloaded(pins: Pins, downloads: Path, cache: Path, say=print, maven_args: tuple[str, ...] = ()) -> None:
    """Every file of `pins` in `downloads`, checked; fetched with Maven only if one is missing."""
    if verify(downloads, pins, maven_repository(cache)):
        fetch(pins, downloads, maven_repository(cache), say, maven_args)


def assemble_painless(home: Path, downloads: Path) -> None:
    """modules/lang-painless: the lang-painless jar, its runtime jars not already in lib/, and our
    plugin descriptor and security policy (k-NN extends lang-painless; the 2.19 integ-test zip
    lacks it)."""
    module = home / "modules" / "lang-painless"
    module.mkdir(parents=True)
    in_lib = {path.name for path in (home / "lib").glob("*.jar")}
    for name in RELEASES[DEFAULT_VERSION].pins.digests():
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
    stamp = {"version": version, "pins": [sha256(pins.checksums) for pins in chosen.pin_sets(security, ml)],
             "painless": _painless_digest(), "security": security, "ml": ml}  # fmt: skip
    marker = home / MARKER
    if marker.is_file():
        recorded = json.loads(marker.read_text())
        if all(recorded.get(key, False) == value for key, value in stamp.items()):
            return Installation(home, bool(recorded.get("knn_native")), security, version, ml)
    downloads = chosen.downloads(cache)
    for pins in chosen.pin_sets(security, ml):
        ensure_downloaded(pins, downloads, cache, say)
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
