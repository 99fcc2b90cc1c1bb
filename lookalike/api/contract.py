"""The API's contract as the OpenAPI document states it: the error shape, the statuses each route
can answer, and what an image upload is. Routes declare their statuses here, once, with the reason
for each; schemathesis (`--checks all`, tests/api/test_contract.py) holds the server to them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Problem(BaseModel):
    """Every error: the reason in words, and the HTTP status again."""

    error: str
    status: int


REASONS = {
    400: "A query or upload that cannot be answered as given (an empty upload, no `image` field, k or "
         "per_category out of range, too many categories), or an image its decoder cannot read (corrupt).",
    401: "A key is needed (LOOKALIKE_API_READ_KEY for reads when set, LOOKALIKE_API_KEY for writes) or is wrong.",
    403: "Writes are switched off: the server has no LOOKALIKE_API_KEY.",
    404: "No indexed image has that id (or, for a thumbnail, its source is not a local file).",
    413: "The upload is over LOOKALIKE_MAX_IMAGE_BYTES, or the image has more pixels than the model server takes.",
    415: "Not an image the model server can decode (JPEG, PNG, GIF, WebP, BMP or TIFF).",
    422: "A parameter of the wrong type or range, or an image the model server cannot use (too small).",
    503: "The model server or the index is down, overloaded or timing out; `error` names which.",
}  # fmt: skip

# What a route that reads an upload can answer beyond its success (the model server's refusals).
UPLOAD_ERRORS = (400, 413, 415, 422, 503)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """FastAPI `responses=` for these error statuses, each with the Problem shape and its reason."""
    return {code: {"model": Problem, "description": REASONS[code]} for code in sorted(set(codes))}


def image_body(*text_fields: str) -> dict:
    """`openapi_extra` for a route that takes one image: a multipart form whose `image` file is
    required (plus optional text fields), or the image itself as the raw body. Whether the bytes
    are a usable image is beyond a schema: the model server answers 400/413/415/422 with its reason."""
    binary = {"type": "string", "format": "binary", "minLength": 1,
              "description": "JPEG, PNG, GIF, WebP, BMP or TIFF, at most LOOKALIKE_MAX_IMAGE_BYTES"}  # fmt: skip
    form = {"type": "object", "required": ["image"],
            "properties": {"image": binary, **{name: {"type": "string"} for name in text_fields}}}  # fmt: skip
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": form},
                "application/octet-stream": {"schema": binary},
                "image/jpeg": {"schema": binary},
                "image/png": {"schema": binary},
                "image/webp": {"schema": binary},
            },
        }
    }
