"""The `lookalike` command's front door: what each command imports before it runs, and the
backbone choices read from the registry only when asked."""

from __future__ import annotations

import subprocess
import sys

import pytest
from lookalike_handler.backbones import BACKBONES

from lookalike.cli.main import main

SPARED = """
import sys
from lookalike.cli.main import build_parser
for argv in (["search", "photo.jpg", "--json"], ["stop"], ["status"], ["dedup"]):
    build_parser().parse_args(argv)
    print(f"{argv[0]}: " + ",".join(name for name in ("torch", "torchvision") if name in sys.modules))
"""


def test_commands_that_run_no_model_start_without_torch():
    """In a fresh interpreter (torch is already loaded in this one), parsing a search or an operator
    command loads neither torch nor torchvision: 1.6 s of a CLI search's start, measured."""
    done = subprocess.run([sys.executable, "-c", SPARED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["search: ", "stop: ", "status: ", "dedup: "]


def test_the_backbone_choices_come_from_the_registry(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["mar", "--model", "vgg16"])
    assert exit_.value.code == 2
    refused = capsys.readouterr().err
    assert all(repr(name) in refused for name in BACKBONES), refused
    with pytest.raises(SystemExit):
        main(["mar", "--help"])
    assert ", ".join(sorted(BACKBONES)) in " ".join(capsys.readouterr().out.split())
