"""The archive builder: what a .mar records, and exact advice when ResNet50 weights are missing."""

from __future__ import annotations

import os
import zipfile

import pytest
import torch
from torchvision.models import resnet50

from lookalike.cli.main import main
from lookalike.serving import archive, weights


def test_mar_records_model_id_dimension_and_ships_the_handler(store):
    mar = store / "efficientnet_lite0.mar"
    config = archive.describe(mar)
    assert config["handler"]["backbone"] == "efficientnet_lite0"
    assert config["handler"]["dimension"] == 1280
    assert config["handler"]["weights"] == "file"
    assert config["batchSize"] == 8  # from the checked-in model_store/model-config.yaml
    names = zipfile.ZipFile(mar).namelist()
    assert "ts_handler.py" in names and "lookalike_handler/decode.py" in names
    assert "efficientnet-lite0-57934424.pth" in names
    assert not [name for name in names if "__pycache__" in name]


def test_random_weight_archive_carries_no_weights(store):
    mar = store / "resnet50-random.mar"
    handler = archive.describe(mar)["handler"]
    assert (handler["backbone"], handler["dimension"], handler["weights"]) == ("resnet50", 2048, "random")
    assert not [name for name in zipfile.ZipFile(mar).namelist() if name.endswith(".pth")]


def test_overrides_reach_the_archive(store):
    config = archive.describe(store / "lite0-batch4.mar")
    assert config["batchSize"] == 4 and config["maxBatchDelay"] == 3000


def test_missing_resnet50_weights_say_exactly_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(weights.ENV_RESNET50, raising=False)
    with pytest.raises(weights.WeightsNotFound) as caught:
        weights.resolve("resnet50", download=False)
    message = str(caught.value)
    assert weights.RESNET50_URL in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth") in message
    assert "WEIGHTS=" in message and "efficientnet_lite0" in message and "RANDOM_WEIGHTS=1" in message


def test_resnet50_weights_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(weights.ENV_RESNET50, raising=False)
    cached = tmp_path / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    cached.parent.mkdir(parents=True)
    torch.save(resnet50(weights=None).state_dict(), cached)
    assert weights.resolve("resnet50", download=False) == cached
    explicit = tmp_path / "mine.pth"
    explicit.write_bytes(cached.read_bytes())
    monkeypatch.setenv(weights.ENV_RESNET50, str(explicit))
    assert weights.resolve("resnet50", download=False) == explicit
    with pytest.raises(weights.WeightsNotFound, match="does not exist"):
        weights.resolve("resnet50", explicit=str(tmp_path / "typo.pth"))


def test_cli_exits_2_with_the_advice(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv(weights.ENV_RESNET50, raising=False)
    monkeypatch.setattr(weights, "_download", _refuse)
    assert main(["mar", "--model", "resnet50", "--store", str(tmp_path)]) == 2
    assert "curl -LO" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.mar"))


def _refuse(url, dest, timeout=30.0):
    raise OSError("no network in this test")


def test_an_archive_older_than_the_handler_code_is_stale(tmp_path):
    mar = tmp_path / "m.mar"
    assert archive.is_stale(mar)
    mar.write_bytes(b"")
    assert not archive.is_stale(mar)
    newest = max(path.stat().st_mtime for path in archive.HANDLER_DIR.glob("*.py"))
    os.utime(mar, (newest - 10, newest - 10))
    assert archive.is_stale(mar)
