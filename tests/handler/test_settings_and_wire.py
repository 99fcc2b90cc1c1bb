"""Handler settings from model-config.yaml, the request payload shapes, and the wire format."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from lookalike_handler.errors import BadPayload, ConfigError, EmptyImage
from lookalike_handler.payload import image_bytes
from lookalike_handler.settings import HandlerSettings
from lookalike_handler.wire import decode_vector, encode_vector


def test_settings_from_yaml_section_and_env_override():
    cfg = {"handler": {"backbone": "efficientnet_lite0", "dimension": 1280, "precision": "auto"}}
    settings = HandlerSettings.from_model_config(cfg, environ={"LOOKALIKE_HANDLER_PRECISION": "fp32"})
    assert settings.backbone == "efficientnet_lite0" and settings.dimension == 1280
    assert settings.precision == "fp32"  # the documented way to force fp32 without rebuilding


def test_unknown_or_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="batchsize"):
        HandlerSettings.from_model_config({"handler": {"batchsize": 8}}, environ={})
    with pytest.raises(ConfigError, match="precision"):
        HandlerSettings.from_model_config({"handler": {"precision": "int4"}}, environ={})


def test_payload_raw_multipart_and_base64():
    raw = b"\xff\xd8\xff\xe0 fake jpeg"
    assert image_bytes({"body": bytearray(raw)}) == raw
    assert image_bytes({"image": raw, "encoding": b"list"}) == raw
    assert image_bytes({"upload": raw}) == raw  # a single field of any name
    b64 = base64.b64encode(raw).decode()
    assert image_bytes({"body": json.dumps({"image": b64}).encode()}) == raw
    assert image_bytes({"body": json.dumps({"image": "data:image/jpeg;base64," + b64}).encode()}) == raw


def test_payload_errors_say_what_to_send():
    with pytest.raises(BadPayload, match="'image'"):
        image_bytes({"a": b"1", "b": b"2"})
    with pytest.raises(BadPayload, match="valid JSON"):
        image_bytes({"body": b"{not json"})
    with pytest.raises(BadPayload, match='"image"'):
        image_bytes({"body": b'{"picture": "abc"}'})
    with pytest.raises(EmptyImage):
        image_bytes({"body": b'{"image": ""}'})


@pytest.mark.parametrize("encoding", ["base64", "list"])
def test_wire_round_trip_is_exact_and_compact(encoding):
    vector = np.random.default_rng(0).standard_normal(2048).astype(np.float32)
    body = encode_vector(vector, "resnet50", encoding)
    doc = json.loads(body)
    assert doc["model"] == "resnet50" and doc["dimension"] == 2048 and doc["encoding"] == encoding
    assert np.array_equal(decode_vector(doc), vector)
    if encoding == "base64":
        assert len(body) < 11_200  # vs ~42 KB for TorchServe's indented list
    assert b"\n" not in body
