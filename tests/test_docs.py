"""The README and docs against the code: every `lookalike` command they name answers --help, every
`make` target they name exists, every LOOKALIKE_* variable they name is read by Settings (or is a
handler setting), every relative link points at a file and heading that exist, and the Python
snippets' imports import. Offline and in-process, so it runs in the fast tier."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest
from lookalike_handler.settings import HandlerSettings

from lookalike.cli.main import BENCHMARKS, main
from lookalike.settings import ENV_PREFIX, WORKER_PREFIX, Settings

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
ACTIONS = {"bench": set(BENCHMARKS), "admin": {"info", "create", "merge", "swap", "recall"},
           "opensearch": {"start", "stop", "status", "env", "connect"}}  # fmt: skip


def text() -> str:
    return "\n".join(doc.read_text() for doc in DOCS)


def named_commands() -> set[tuple[str, ...]]:
    """("bench", "embed"), ("ingest",) ...: each `lookalike SUB [ACTION]` the docs write."""
    found = set()
    for match in re.finditer(r"(?<![\w/.-])lookalike ([a-z][a-z0-9-]*)(?: ([a-z][a-z0-9-]*))?", text()):
        sub, action = match.groups()
        found.add((sub, action) if action in ACTIONS.get(sub, ()) else (sub,))
    return found


@pytest.mark.parametrize("command", sorted(named_commands()), ids=" ".join)
def test_every_command_the_docs_name_answers_help(command, capsys):
    argv = list(command) if command[0] != "admin" else ["admin"]  # admin's action is a positional
    try:
        code = main([*argv, "--help"])  # argparse exits; loadtest returns Locust's exit code
    except SystemExit as done:
        code = done.code
    assert code in (0, None), command
    assert "usage" in capsys.readouterr().out.lower() or command == ("loadtest",)  # Locust prints to its own stdout


def test_the_docs_name_commands_at_all():
    assert {("ingest",), ("search",), ("bench", "embed"), ("demo",)} <= named_commands()


def test_every_make_target_the_docs_name_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):.*## ", (REPO / "Makefile").read_text(), re.M))
    named = set(re.findall(r"(?<![\w-])make ([a-z][a-z-]*)", text()))
    assert named and named <= targets, sorted(named - targets)


def test_every_variable_the_docs_name_is_read_by_settings():
    fields = {field.name for field in dataclasses.fields(Settings)}
    handler = {field.name for field in dataclasses.fields(HandlerSettings)}
    unknown = []
    for name in set(re.findall(r"LOOKALIKE_[A-Z0-9_]*", text())):
        if name.endswith("_"):  # a prefix: LOOKALIKE_* or LOOKALIKE_HANDLER_<KEY>
            known = name in (ENV_PREFIX, WORKER_PREFIX)
        elif name.startswith(WORKER_PREFIX):
            known = name.removeprefix(WORKER_PREFIX).lower() in handler
        else:
            known = name.removeprefix(ENV_PREFIX).lower() in fields
        if not known:
            unknown.append(name)
    assert not unknown, sorted(unknown)


def test_relative_links_point_at_files_and_headings_that_exist():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#:\s]*)(?:#([^)\s]*))?\)", doc.read_text()):
            path, anchor = target
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.name}: {path}")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{doc.name}: {path}#{anchor}")
    assert not broken, broken


def anchors(doc: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", doc.read_text(), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_python_snippets_import_what_exists():
    for block in re.findall(r"```python\n(.*?)```", text(), re.S):
        imports = "\n".join(line for line in block.splitlines() if re.match(r"(from \S+ )?import ", line))
        exec(compile(imports, "<docs>", "exec"), {})  # an ImportError fails the test, naming it


def constant(path: str) -> object:
    """`package.module.NAME` (or further attributes and dict keys after NAME), imported."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            found = found[part] if isinstance(found, dict) else getattr(found, part)
        return found
    raise AssertionError(f"{path} names no module")


CONSTANTS = re.findall(r"^\| `([\w.]+)` \| ([^|]+) \|", (REPO / "docs" / "constants.md").read_text(), re.M)


@pytest.mark.parametrize(("path", "value"), CONSTANTS, ids=[path for path, _ in CONSTANTS])
def test_every_value_docs_constants_gives_is_the_codes(path, value):
    assert constant(path) == float(value.strip()), f"docs/constants.md says {path} = {value.strip()}"


def test_docs_constants_names_the_constants_measured():
    assert len(CONSTANTS) >= 15
