"""The catalogue's live record (lookalike.index.live) on the embedded backend: no record, a rollout
building, the switch, an abandoned rollout. Fast tier (a file; the OpenSearch aliases are in
tests/operations/test_rollout_backends.py, slow)."""

from __future__ import annotations

import pytest

from lookalike.errors import IndexMismatch
from lookalike.index import live
from lookalike.settings import Settings

LITE = live.Pair("efficientnet_lite0", "efficientnet_lite0", 1280)
RESNET = live.Pair("resnet50", "resnet50", 2048)


def test_begin_switch_and_abandon(tmp_path):
    settings = Settings(data_dir=tmp_path, alias="shop")
    assert live.read(settings) == live.State(None)  # never rolled out: the configured endpoint serves
    live.begin(settings, LITE, RESNET)
    assert live.read(settings) == live.State(LITE, RESNET)
    live.switch(settings, live.read(settings))
    assert live.read(settings) == live.State(RESNET, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shop.live.json"]  # replaced whole, nothing left over
    live.begin(settings, RESNET, LITE)
    live.abandon(settings, RESNET, LITE)
    assert live.read(settings) == live.State(RESNET, None)
    with pytest.raises(IndexMismatch, match="no rollout is building"):
        live.switch(settings, live.read(settings))


def test_a_damaged_record_is_a_clear_error(tmp_path):
    settings = Settings(data_dir=tmp_path, alias="shop")
    live.state_file(settings).write_text("{not json")
    with pytest.raises(IndexMismatch, match=r"cannot read .*shop\.live\.json"):
        live.read(settings)
