"""The TorchServe launcher: per-instance config, and a start that fails fast with the reason."""

from __future__ import annotations

import pytest
import torch

from lookalike import ports
from lookalike.serving.torchserve import PORT_KEYS, ServerError, TorchServe, read_properties, write_properties


def test_properties_round_trip_keeps_backslashes(tmp_path):
    props = {"allowed_urls": r"^file://\Q/a b\E/[^/]+\.mar$", "x": "1"}
    write_properties(tmp_path / "c.properties", props)
    assert r"\\Q" in (tmp_path / "c.properties").read_text()
    assert read_properties(tmp_path / "c.properties") == props


def test_instance_config_overrides_only_instance_keys(tmp_path):
    server = TorchServe({"m": "m.mar"}, store=tmp_path, run_dir=tmp_path / "run", ports=dict.fromkeys(PORT_KEYS, 1))
    config = server.config()
    assert config["load_models"] == "m=m.mar"
    assert config["disable_token_authorization"] == "true"
    assert config["default_workers_per_model"] == "1"  # from model_store/config.properties
    assert TorchServe({}, token_auth=True).config()["disable_token_authorization"] == "false"


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is valid where a GPU is present")
def test_a_worker_that_cannot_load_fails_the_start_with_its_reason(mar_builder, tmp_path):
    """fp16 is GPU-only: on a CPU worker the handler refuses it, and start() says so within seconds."""
    mar_builder("resnet50", tmp_path, name="broken", random_weights=True, handler_overrides={"precision": "fp16"})
    server = TorchServe(
        {"broken": "broken.mar"}, store=tmp_path, run_dir=tmp_path / "run", ports=ports.free_ports(PORT_KEYS)
    )
    with pytest.raises(ServerError) as caught:
        server.start(timeout=120)
    assert "fp16 is for GPUs only" in str(caught.value)
    assert server.pid() is None  # stopped again, nothing left running


def test_workers_get_our_handler_overrides_and_no_other_lookalike_variable(tmp_path, monkeypatch):
    """The launcher forwards LOOKALIKE_HANDLER_* explicitly; search-side settings such as
    LOOKALIKE_MAX_IMAGE_BYTES must not reach the handler (which once read LOOKALIKE_<KEY> itself)."""
    monkeypatch.setenv("LOOKALIKE_HANDLER_PRECISION", "fp32")
    monkeypatch.setenv("LOOKALIKE_MAX_IMAGE_BYTES", "10")
    env = TorchServe({}, run_dir=tmp_path, env={"LOOKALIKE_HANDLER_DECODE": "exact"})._environ()
    assert env["LOOKALIKE_HANDLER_PRECISION"] == "fp32" and env["LOOKALIKE_HANDLER_DECODE"] == "exact"
    assert "LOOKALIKE_MAX_IMAGE_BYTES" not in env
    assert env["TMPDIR"] == str(tmp_path / "tmp")
