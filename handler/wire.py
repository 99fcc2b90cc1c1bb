"""`[D]` float32 vector -> the compact JSON answer the server sends (and back, for clients).

Wire format (one JSON object per request, Content-Type application/json):

    {"model": "resnet50", "dimension": 2048, "dtype": "float32", "precision": "bf16",
     "archive": "resnet50/1.0", "encoding": "base64", "embedding": "<base64 of D little-endian float32>"}

`precision` is what the worker ran the model at (fp32, bf16, fp16 or int8); `archive` is the
`.mar` that served it, as "<model name>/<archive version>" (torch-model-archiver's --version,
`lookalike mar --archive-version`): during a rolling update each answer says which one it was.

2048 floats take 10.9 KB as base64, against ~42 KB as TorchServe's indented list.
A form field `encoding=list` (or the header `X-Lookalike-Encoding: list`) sends
`"embedding": [0.0123, ...]` instead (compact, for curl and jq).
With `regions=<scheme>` (form field, query parameter or `X-Lookalike-Regions`), the answer also
carries `"regions": "<scheme>"` and `"region_vectors": [{"box": [l, t, r, b], "embedding": ...}]`,
one per box of the scheme (fractions of the image's width and height), in the same encoding.
Errors: {"error": "<reason>", "status": <http code>} with that HTTP status.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

ENCODINGS = ("base64", "list")


def _embedding(array: np.ndarray, encoding: str) -> Any:
    if encoding == "list":
        return [float(x) for x in array]
    return base64.b64encode(array.tobytes()).decode("ascii")


def encode_vector(vector: np.ndarray, model: str, encoding: str = "base64",
                  regions: list[tuple[tuple[float, float, float, float], np.ndarray]] | None = None,
                  scheme: str = "none", precision: str | None = None, archive: str | None = None) -> bytes:  # fmt: skip
    """One float32 vector `[D]` (and its regions' `(box, [D])`, if asked for) -> UTF-8 JSON bytes."""
    array = np.ascontiguousarray(vector, dtype="<f4")
    encoding = "list" if encoding == "list" else "base64"
    doc: dict[str, Any] = {"model": model, "dimension": int(array.shape[0]), "dtype": "float32"}
    if precision is not None:
        doc["precision"] = precision
    if archive is not None:
        doc["archive"] = archive
    doc.update(encoding=encoding, embedding=_embedding(array, encoding))
    if regions is not None:
        doc["regions"] = scheme
        doc["region_vectors"] = [
            {"box": list(box), "embedding": _embedding(np.ascontiguousarray(v, dtype="<f4"), encoding)}
            for box, v in regions
        ]
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def encode_error(status: int, reason: str) -> bytes:
    return json.dumps({"error": reason, "status": status}, separators=(",", ":")).encode("utf-8")


def decode_vector(doc: Mapping[str, Any], embedding: Any = None) -> np.ndarray:
    """The parsed JSON answer -> float32 vector `[D]` (of `embedding`, default the whole image's);
    checks the stated dimension."""
    embedding = doc["embedding"] if embedding is None else embedding
    if doc.get("encoding", "base64") == "list":
        vector = np.asarray(embedding, dtype=np.float32)
    else:
        vector = np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float32)
    if vector.shape != (int(doc["dimension"]),):
        raise ValueError(f"embedding has {vector.shape[0]} values but dimension says {doc['dimension']}")
    return vector


def decode_regions(doc: Mapping[str, Any]) -> list[tuple[tuple[float, ...], np.ndarray]]:
    """The answer's region vectors as (box, `[D]`) pairs; [] when it has none."""
    return [(tuple(float(x) for x in region["box"]), decode_vector(doc, region["embedding"]))
            for region in doc.get("region_vectors", [])]  # fmt: skip
