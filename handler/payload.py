"""One TorchServe request dict -> the image bytes it carries, whatever way they were sent.

Accepted: a raw body (`image/*`, `application/octet-stream`), multipart form
data (field `image`, `file` or `data`), and JSON `{"image": "<base64>"}` (a
`data:` URI works too). TorchServe is run with `decode_input_request=false`, so
every value arrives as bytes and the JSON is parsed here, with clear errors.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from .errors import BadPayload, EmptyImage

IMAGE_FIELDS = ("image", "file", "data", "body")
# Query parameters and form fields that are options, not the image.
OPTION_FIELDS = frozenset({"encoding", "regions"})


def image_bytes(request: Mapping[str, Any]) -> bytes:
    """The raw image bytes of one request."""
    fields = {name: value for name, value in request.items() if name not in OPTION_FIELDS}
    value = next((fields[name] for name in IMAGE_FIELDS if name in fields), None)
    if value is None:
        if len(fields) != 1:
            names = ", ".join(sorted(fields)) or "none"
            raise BadPayload(f"no image found: send it as the body or a form field named 'image' (got fields: {names})")
        value = next(iter(fields.values()))
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, Mapping):  # TorchServe decoded the JSON after all
        return _from_json_object(value)
    if not isinstance(value, (bytes, bytearray)):
        raise BadPayload(f"unexpected request value of type {type(value).__name__}")
    if bytes(value[:64]).lstrip()[:1] == b"{":
        return _from_json(bytes(value))
    return bytes(value)


def option(request: Mapping[str, Any], name: str) -> str | None:
    """A request option (query parameter or form field) as text, or None."""
    value = request.get(name)
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _from_json(raw: bytes) -> bytes:
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadPayload(f"body starts like JSON but is not valid JSON: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise BadPayload('JSON body must be an object like {"image": "<base64>"}')
    return _from_json_object(doc)


def _from_json_object(doc: Mapping[str, Any]) -> bytes:
    encoded = doc.get("image")
    if not isinstance(encoded, str):
        raise BadPayload('JSON body needs a string field "image" holding the base64-encoded image')
    if encoded.startswith("data:"):
        encoded = encoded.partition(",")[2]
    if not encoded.strip():
        raise EmptyImage('JSON field "image" is empty')
    try:
        return base64.b64decode(encoded, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise BadPayload(f'JSON field "image" is not valid base64: {exc}') from exc
