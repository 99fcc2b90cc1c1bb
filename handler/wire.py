"""`[D]` float32 vector -> the compact JSON answer the server sends (and back, for clients).

Wire format (one JSON object per request, Content-Type application/json):

    {"model": "resnet50", "dimension": 2048, "dtype": "float32",
     "encoding": "base64", "embedding": "<base64 of D little-endian float32>"}

2048 floats take 10.9 KB as base64, against ~42 KB as TorchServe's indented list.
A form field `encoding=list` (or the header `X-Lookalike-Encoding: list`) sends
`"embedding": [0.0123, ...]` instead (compact, for curl and jq).
Errors: {"error": "<reason>", "status": <http code>} with that HTTP status.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

ENCODINGS = ("base64", "list")


def encode_vector(vector: np.ndarray, model: str, encoding: str = "base64") -> bytes:
    """One float32 vector `[D]` -> UTF-8 JSON bytes."""
    array = np.ascontiguousarray(vector, dtype="<f4")
    if encoding == "list":
        embedding: Any = [float(x) for x in array]
    else:
        encoding = "base64"
        embedding = base64.b64encode(array.tobytes()).decode("ascii")
    doc = {
        "model": model,
        "dimension": int(array.shape[0]),
        "dtype": "float32",
        "encoding": encoding,
        "embedding": embedding,
    }
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def encode_error(status: int, reason: str) -> bytes:
    return json.dumps({"error": reason, "status": status}, separators=(",", ":")).encode("utf-8")


def decode_vector(doc: Mapping[str, Any]) -> np.ndarray:
    """The parsed JSON answer -> float32 vector `[D]`; checks the stated dimension."""
    if doc.get("encoding", "base64") == "list":
        vector = np.asarray(doc["embedding"], dtype=np.float32)
    else:
        vector = np.frombuffer(base64.b64decode(doc["embedding"]), dtype="<f4").astype(np.float32)
    if vector.shape != (int(doc["dimension"]),):
        raise ValueError(f"embedding has {vector.shape[0]} values but dimension says {doc['dimension']}")
    return vector
