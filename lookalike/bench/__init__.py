"""Benchmarks behind `lookalike bench NAME`: each prints a table and writes JSON under reports/."""

from __future__ import annotations

import argparse


def parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of benchmark `module` (its __name__), with its docstring as the help."""
    return argparse.ArgumentParser(prog=f"lookalike bench {module.rsplit('.', 1)[-1]}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
