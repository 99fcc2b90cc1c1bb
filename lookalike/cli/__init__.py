"""The `lookalike` command. `run` is its console-script entry point: it imports the commands (and
with them torch) only when called, so a process that merely imports the script — a benchmark's
spawned worker re-imports its parent's main script — stays light."""

from __future__ import annotations


def run() -> int:
    from lookalike.cli.main import main

    return main()
