"""Benchmarks behind `lookalike bench NAME`: each prints a table and writes JSON under reports/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of benchmark `module` (its __name__), with its docstring as the help."""
    return argparse.ArgumentParser(prog=f"lookalike bench {module.rsplit('.', 1)[-1]}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip


def write_report(out: Path, args: argparse.Namespace, **content: object) -> None:
    """Write a benchmark's JSON report: its arguments as `meta`, then `content`; print where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": {k: str(v) for k, v in vars(args).items()}, **content}, indent=2))
    print(f"JSON: {out}")
