"""A small client for the embedding server: image bytes -> float32 vector `[D]`.

The bearer key comes from the argument, `LOOKALIKE_TS_TOKEN`, or the key file TorchServe
writes when token authorisation is on (`LOOKALIKE_TS_KEY_FILE`, its "inference" key).
TorchServe answers a missing or wrong key with 400 InvalidKeyException; the client reports
it as 401 and, when the key came from the key file, re-reads the file once (keys expire).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import requests

from handler.wire import decode_vector

DEFAULT_URL = "http://127.0.0.1:8080"


class ModelServerError(Exception):
    """The model server refused a request (`status` 4xx) or failed (5xx / unreachable: status 503)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def read_key_file(path: str | Path, kind: str = "inference") -> str:
    """The `kind` key from TorchServe's key_file.json."""
    return json.loads(Path(path).read_text())[kind]["key"]


def resolve_token(token: str | None = None, key_file: str | None = None) -> tuple[str | None, str | None]:
    """(bearer key, key file to re-read when the key is rejected), in this order: `token`, `key_file`,
    LOOKALIKE_TS_TOKEN, the file named by LOOKALIKE_TS_KEY_FILE; (None, None) without authorisation."""
    if token:
        return token, None
    if not key_file:
        env_token = os.environ.get("LOOKALIKE_TS_TOKEN")
        if env_token:
            return env_token, None
        key_file = os.environ.get("LOOKALIKE_TS_KEY_FILE") or None
    return (read_key_file(key_file), key_file) if key_file else (None, None)


class EmbeddingClient:
    def __init__(
        self,
        url: str = DEFAULT_URL,
        model: str = "resnet50",
        token: str | None = None,
        timeout: float = 60.0,
        session: requests.Session | None = None,
        key_file: str | None = None,
    ) -> None:
        self.endpoint = f"{url.rstrip('/')}/predictions/{model}"
        self.model = model
        self.timeout = timeout
        self.session = session or requests.Session()
        token, self.key_file = resolve_token(token, key_file)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def embed_response(self, image: bytes) -> dict:
        """POST the raw bytes; the parsed JSON answer (see handler/wire.py)."""
        try:
            return self._post(image)
        except ModelServerError as exc:
            if exc.status != 401 or not self.key_file:
                raise
            self.session.headers["Authorization"] = f"Bearer {read_key_file(self.key_file)}"
            return self._post(image)

    def _post(self, image: bytes) -> dict:
        try:
            response = self.session.post(
                self.endpoint,
                data=image,
                headers={"Content-Type": "application/octet-stream"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise ModelServerError(503, f"model server unreachable at {self.endpoint}: {exc}") from exc
        if response.status_code != 200:
            if _is_auth_failure(response):
                raise ModelServerError(
                    401, "model server rejected the bearer key: set LOOKALIKE_TS_TOKEN or LOOKALIKE_TS_KEY_FILE"
                )
            raise ModelServerError(response.status_code, _reason(response))
        return response.json()

    def embed(self, image: bytes) -> np.ndarray:
        """Image bytes -> float32 L2-normalised vector `[D]`."""
        return decode_vector(self.embed_response(image))


def _is_auth_failure(response: requests.Response) -> bool:
    return response.status_code in (400, 401) and "InvalidKeyException" in response.text


def _reason(response: requests.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    return str(doc.get("error") or doc.get("message") or doc)
