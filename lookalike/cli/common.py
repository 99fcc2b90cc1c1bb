"""What every subcommand shares: the settings flags, and errors turned into exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.settings import Settings
from lookalike.stack import Connected, connect

Command = Callable[[argparse.Namespace], int]


def add_settings_args(parser: argparse.ArgumentParser) -> None:
    """Flags for the settings most commands need; each overrides its LOOKALIKE_* variable."""
    defaults = Settings()
    group = parser.add_argument_group("model server and index (defaults from LOOKALIKE_* variables)")
    group.add_argument("--ts-url", help=f"TorchServe inference URL (LOOKALIKE_TS_URL; {defaults.ts_url})")
    group.add_argument("--model", help=f"TorchServe model name (LOOKALIKE_MODEL; {defaults.model})")
    group.add_argument("--opensearch-url", help="OpenSearch URL; unset = embedded index (LOOKALIKE_OPENSEARCH_URL)")
    group.add_argument("--alias", help=f"index alias / name prefix (LOOKALIKE_ALIAS; {defaults.alias})")
    group.add_argument("--index", help="OpenSearch: a physical index instead of the alias (LOOKALIKE_INDEX)")
    group.add_argument("--data-dir", type=Path, help="embedded index folder (LOOKALIKE_DATA_DIR; run/index)")
    group.add_argument("-v", "--verbose", action="store_true", help="log more")


def settings_from_args(args: argparse.Namespace, **more: object) -> Settings:
    """Settings.from_env() with the flags of `add_settings_args` (and `more`) on top."""
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(message)s")  # fmt: skip
    flags = ("ts_url", "model", "opensearch_url", "alias", "index", "data_dir")
    return Settings.from_env(**{name: getattr(args, name, None) for name in flags}, **more)  # type: ignore[arg-type]


def connected(args: argparse.Namespace) -> Connected:
    return connect(settings_from_args(args))


def guarded(command: Command) -> Command:
    """Run `command`; a known failure prints one clear line to stderr and returns its exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except LookalikeError as exc:
            print(f"error: {exc.reason}", file=sys.stderr)
            return exc.exit_code

    return run


def example_epilog(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def subparser(sub: argparse._SubParsersAction, name: str, summary: str, *examples: str) -> argparse.ArgumentParser:
    """A subcommand with its one-line summary, its examples, and defaults shown in --help."""
    return sub.add_parser(
        name, help=summary, description=summary, epilog=example_epilog(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
