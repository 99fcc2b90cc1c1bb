"""The kinds of local node `lookalike opensearch start` makes, each in its own folder on its own port.

A plain 2.19 node, a secured one, one with ml-commons and a 3.5 one can all exist and run at once,
so the README's commands work in any order: no kind finds another kind's data in its folder or its
port taken by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import NodeError
from lookalike.opensearch_node.install import DEFAULT_VERSION, RELEASES
from lookalike.settings import RUN_DIR


@dataclass(frozen=True)
class Kind:
    name: str  # as `lookalike opensearch status` lists it
    folder: str  # under run/: its config, data, logs and pid file
    port: int  # its HTTP port unless --port or OPENSEARCH_PORT says otherwise
    secure: bool = False
    ml: bool = False
    version: str = DEFAULT_VERSION

    @property
    def home(self) -> Path:
        return RUN_DIR / self.folder

    @property
    def flags(self) -> str:
        """The start flags that make this kind."""
        return {"plain": "", "secured": "--secure", "ml": "--ml"}.get(self.name, f"--version {self.version}")


KINDS = (
    Kind("plain", "opensearch", 9200),
    Kind("secured", "opensearch-secure", 9201, secure=True),
    Kind("ml", "opensearch-ml", 9202, ml=True),
    *(Kind(version, f"opensearch-{version}", 9203, version=version)
      for version in RELEASES if version != DEFAULT_VERSION),
)  # fmt: skip


def kind_of(secure: bool = False, ml: bool = False, version: str | None = None) -> Kind:
    """The kind the start flags ask for. A combination we do not build (--secure --ml, --secure with
    3.5) gets its version's plain folder here; the installer refuses it with the reason."""
    version = version or DEFAULT_VERSION
    made = [kind for kind in KINDS if kind.version == version]
    return next((kind for kind in made if (kind.secure, kind.ml) == (secure, ml)), made[0])


def existing() -> list[Kind]:
    """The kinds whose default folder holds a node (it was started once)."""
    return [kind for kind in KINDS if kind.home.is_dir()]


def not_one(running: list[Kind], action: str) -> NodeError:
    """`env` and the like name one node: say which flags pick one when none or several run."""
    if not running:
        return NodeError(f"no local OpenSearch node is running (lookalike opensearch start); {action} needs one")
    names = ", ".join(f"{kind.name} ({kind.flags or 'no flag'})" for kind in running)
    return NodeError(f"several local nodes are running: {names}; {action} which one? Give its flag or --dir")
