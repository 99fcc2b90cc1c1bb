"""Fetch a set of pinned artifacts with Maven, then hold each file to our SHA-256 pin.

A set of pins is a pom.xml naming exact artifacts and the checksums.sha256 beside it. Maven is only
the client that reaches the registry (with the user's mirror, proxy and credentials from
~/.m2/settings.xml); our pins are the integrity check. Maven runs with lax checksums (-c): the
registry serves some zips without a checksum file, and a strict policy failed those although they
match our pins. Maven's own repository lives in our cache (`repository`), so an empty cache is a
first install, whatever ~/.m2 holds.

Failures are told apart: the registry unreachable, an artifact it does not have, a digest that is
not our pin (the file is deleted). A missing checksum file is a warning once our pin matches.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from lookalike.errors import NodeError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
FAST_START = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
NO_CHECKSUM = re.compile(r"Checksum validation failed, no checksums available from \S+ for (\S+)")
BAD_CHECKSUM = re.compile(r"Checksum validation failed, expected (\S+) but is (\S+)")
NOT_FOUND = re.compile(r"Could not find artifact (\S+)")
# a connection that never got an answer (refused, no such host, no route, timed out, TLS broke)
UNREACHABLE = re.compile(r"Connect(ion)? (to \S+ )?(refused|failed|timed out)|UnknownHost|Unknown host|No route|"
                         r"Network is unreachable|timed out|SSLHandshake|PKIX path", re.I)  # fmt: skip
TRANSFER = re.compile(r"Could not transfer artifact \S+ from/to \S+ \((\S+)\)")


@dataclass(frozen=True)
class Artifact:
    """One pinned artifact, as its pom.xml names it."""

    group: str
    name: str
    version: str
    kind: str  # the packaging: zip, jar

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.{self.kind}"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.name}:{self.kind}:{self.version}"

    def path_in(self, repository: Path) -> Path:
        """Where a Maven repository keeps it."""
        return repository.joinpath(*self.group.split("."), self.name, self.version, self.file_name)


@dataclass(frozen=True)
class Pins:
    """A set of pinned artifacts: `pom` names them, `checksums` holds each file's SHA-256."""

    pom: Path
    checksums: Path
    what: str  # for progress lines: "OpenSearch 2.19.1", "the security plugin" ...

    @classmethod
    def beside(cls, pom: Path, what: str) -> Pins:
        return cls(pom, pom.parent / "checksums.sha256", what)

    def digests(self) -> dict[str, str]:
        """file name -> sha256."""
        lines = (line.split() for line in self.checksums.read_text().splitlines() if line.strip())
        return {name: digest for digest, name in lines}

    def artifacts(self) -> list[Artifact]:
        """The pom's dependencies, its ${properties} filled in."""
        root = ElementTree.parse(self.pom).getroot()
        properties = {child.tag.split("}")[-1]: (child.text or "") for child in root.findall("m:properties/*", POM_NS)}

        def text(node: ElementTree.Element, tag: str, default: str = "") -> str:
            value = node.findtext(f"m:{tag}", default, POM_NS).strip()
            return re.sub(r"\$\{([^}]+)\}", lambda ref: properties[ref.group(1)], value)

        return [Artifact(text(dep, "groupId"), text(dep, "artifactId"), text(dep, "version"), text(dep, "type", "jar"))
                for dep in root.findall("m:dependencies/m:dependency", POM_NS)]  # fmt: skip


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(downloads: Path, pins: Pins, repository: Path | None = None) -> list[str]:
    """The pinned files missing from `downloads`. A file whose digest is not its pin is deleted (and
    Maven's copy in `repository`, so the next try fetches it anew) and stops the install."""
    missing = []
    by_name = {artifact.file_name: artifact for artifact in pins.artifacts()}
    for name, want in pins.digests().items():
        path = downloads / name
        if not path.is_file():
            missing.append(name)
            continue
        got = sha256(path)
        if got != want:
            path.unlink()
            if repository is not None and name in by_name:
                by_name[name].path_in(repository).unlink(missing_ok=True)
            raise NodeError(f"{name}: SHA-256 mismatch: expected {want} (pinned in {pins.checksums}), got {got}. "
                            "The file was deleted; run the install again to fetch it anew, and if the digest "
                            "differs again, the registry (or a mirror in ~/.m2/settings.xml) serves other bytes "
                            "than the ones we pinned")  # fmt: skip
    return missing


@dataclass
class MavenReport:
    """What one Maven run said about our artifacts."""

    no_checksum: list[str]  # file names the registry served without a checksum file
    bad_checksum: list[str]  # file names whose registry checksum disagreed (our pin decides)
    errors: list[str]  # Maven's [ERROR] lines


def fetch(pins: Pins, downloads: Path, repository: Path, say: Callable[[str], None] = print,
          maven_args: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Bring every artifact of `pins` into `downloads` through Maven (its repository: `repository`),
    check each against its pin, and drop Maven's copies (the checked file is the one we keep).
    `maven_args`: more mvn options, e.g. `-s settings.xml` for a mirror or proxy."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise NodeError("Maven (mvn) is needed to fetch OpenSearch from Maven Central: apt-get install -y maven")
    downloads.mkdir(parents=True, exist_ok=True)
    command = [mvn, "-B", "-c", f"-Dmaven.repo.local={repository}", *maven_args, "-f", str(pins.pom),
               f"{DEPENDENCY_PLUGIN}:copy-dependencies", "-DexcludeTransitive=true",
               f"-DoutputDirectory={downloads}"]  # fmt: skip
    say(f"fetching {pins.what} from Maven Central into {downloads} ...")
    report = _run(command, set(pins.digests()), say)
    if report.errors:
        raise _failure(report.errors, command)
    missing = verify(downloads, pins, repository)
    if missing:
        raise NodeError(f"Maven finished but these are still missing from {downloads}: {', '.join(missing)}")
    for name in report.no_checksum:
        say(f"  warning: the registry serves no checksum file for {name}; its SHA-256 matches our pin")
    for name in report.bad_checksum:
        say(f"  warning: the registry's checksum file for {name} disagrees with the file; its SHA-256 matches our pin")
    for artifact in pins.artifacts():  # checked and copied: Maven's copy would only double the disk it takes
        artifact.path_in(repository).unlink(missing_ok=True)


def _run(command: list[str], wanted: set[str], say: Callable[[str], None]) -> MavenReport:
    """Run Maven, passing its progress on our artifacts to `say`, and collect what it warned of."""
    report = MavenReport([], [], [])
    checking = ""  # the file Maven last said it could not validate; the lines after it say why
    # Maven is a short-lived client here: C1 alone starts it on half the CPU (the user's options still win)
    environ = {**os.environ, "MAVEN_OPTS": f"{FAST_START} {os.environ.get('MAVEN_OPTS', '')}".strip()}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ)
    assert process.stdout is not None
    for raw in process.stdout:
        line = ANSI.sub("", raw.rstrip()).removeprefix("[INFO] ")
        done = re.match(r"Downloaded from \S+: (\S+) \((.+)\)", line)
        if done and Path(done.group(1)).name in wanted:
            say(f"  {Path(done.group(1)).name}: {done.group(2)}")
        elif line.startswith("Downloading from") and Path(line.split()[-1]).name in wanted:
            say(f"  downloading {Path(line.split()[-1]).name} ...")
        elif line.startswith("[WARNING] Could not validate integrity of download from"):
            checking = Path(line.split()[-1]).name
        elif (missing := NO_CHECKSUM.search(line)) and Path(missing.group(1)).name in wanted:
            report.no_checksum.append(Path(missing.group(1)).name)
        elif BAD_CHECKSUM.search(line) and checking in wanted and checking not in report.bad_checksum:
            report.bad_checksum.append(checking)
        elif line.startswith("[ERROR]"):
            report.errors.append(line)
    if process.wait() != 0 and not report.errors:
        report.errors.append(f"[ERROR] mvn exited with status {process.returncode}")
    return report


def _failure(errors: list[str], command: list[str]) -> NodeError:
    """One error that says which kind of failure Maven met: unreachable, not found, or another."""
    detail = "\n".join(errors[:6])
    tail = f"\n  command: {' '.join(command)}\n{detail}"
    not_found = NOT_FOUND.search(detail)
    if not_found:
        return NodeError(f"not found in the registry: {not_found.group(1).rstrip('.,')} (check the version pinned in "
                         f"the pom.xml, or a mirror in ~/.m2/settings.xml that lacks it){tail}")  # fmt: skip
    if UNREACHABLE.search(detail):
        where = TRANSFER.search(detail)
        at = f" ({where.group(1).rstrip(':')})" if where else ""
        return NodeError(f"Maven Central is unreachable{at}: no answer from the registry; check the network, or a "
                         f"proxy or mirror in ~/.m2/settings.xml{tail}")  # fmt: skip
    return NodeError(f"Maven could not fetch the pinned artifacts{tail}")
