"""The one client of the model server: image bytes -> float32 L2-normalised vector `[D]`.

`ModelClient` (sync) and `AsyncModelClient` (async) both run on httpx and share one exchange,
written once as a generator that yields what to do (send this request, sleep this long) and
receives the answers. The rules it encodes:

- Bearer key: from `Settings.ts_token`, else TorchServe's key file (`ts_key_file`, its
  "inference" key). TorchServe answers a missing or wrong key with 400 InvalidKeyException;
  when the key came from the key file it is re-read once (TorchServe rotates keys), else
  `ModelServerAuth` is raised.
- 503/507 (overloaded, a worker restarting) are retried `retries` times with back-off.
- A 4xx about the image is `ImageRefused` with TorchServe's own status and reason.
- Anything else (unreachable, 5xx, not our wire format) is `ModelServerDown`.
- Several instances (LOOKALIKE_TS_URL comma-separated): each request goes to the one with the
  fewest requests in flight; an unreachable or failing (5xx) instance is taken out for a while
  and the request is retried on another (endpoints.py).
- An instance that answers with the replica header (our gate: draining after SIGTERM, or still
  starting) gets no new requests for a while; when its answer was a 503 refusal, the request
  goes at once to another instance (embedding is idempotent), without counting a retry. With one
  URL (a Kubernetes Service before several replicas) it is sent again at once, up to REFUSALS
  times: the refusal closed the connection, and a new one reaches another replica.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
from lookalike_handler.wire import decode_vector
from PIL import Image

from lookalike.errors import ImageRefused, ModelServerAuth, ModelServerDown, ModelServerError
from lookalike.serving.endpoints import HOLD_S, REPLICA_HEADER, pool
from lookalike.settings import Settings

REFUSALS = 3  # a replica-refused request tried again at once this often when no other URL is listed

# What the exchange yields: a request to send, or seconds to sleep before the next try; it gets
# back the response, or the ModelServerDown of a request that reached no server.
Step = httpx.Request | float
Exchange = Generator[Step, httpx.Response | ModelServerDown | None, dict]


@dataclass(frozen=True)
class ModelInfo:
    endpoint: str  # TorchServe model name
    model: str  # backbone id the vectors come from
    dimension: int
    precision: str | None = None  # what the worker ran the model at (None: a server that does not say)


def read_key_file(path: str | Path, kind: str = "inference") -> str:
    """The `kind` key from TorchServe's key_file.json."""
    try:
        return json.loads(Path(path).read_text())[kind]["key"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelServerAuth(f"cannot read the model server's key file {path}: {exc!r}") from exc


def probe_image() -> bytes:
    """A tiny valid PNG: embedding it tells which model and dimension a server serves."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


class _Base:
    def __init__(
        self,
        url: str,
        model: str,
        token: str | None = None,
        key_file: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.pool = pool(url)
        self.url = ",".join(self.pool.urls)
        self.model = model
        self.timeout = httpx.Timeout(timeout, connect=5.0)
        self.retries = retries
        self.key_file = None if token else key_file
        self.token = token or (read_key_file(key_file) if key_file else None)

    @classmethod
    def from_settings(cls, settings: Settings, retries: int = 3) -> Self:
        return cls(settings.ts_url, settings.model, settings.ts_token, settings.ts_key_file,
                   settings.ts_timeout, retries)  # fmt: skip

    def _headers(self, regions: str = "none") -> dict[str, str]:
        headers = {"Content-Type": "application/octet-stream"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if regions != "none":
            headers["X-Lookalike-Regions"] = regions
        return headers

    def _exchange(self, image: bytes, regions: str = "none") -> Exchange:
        reread = bool(self.key_file)
        attempt = 0
        failed: set[str] = set()  # instances that failed this request: try the others first
        refused = 0  # refusals by a replica that drains or starts, this request
        while True:
            base = self.pool.pick(avoid=failed)
            endpoint = f"{base}/predictions/{self.model}"
            healthy = True
            try:
                response = yield httpx.Request("POST", endpoint, content=image, headers=self._headers(regions))
                if isinstance(response, ModelServerDown):
                    raise response
                assert isinstance(response, httpx.Response)
                state = response.headers.get(REPLICA_HEADER)
                if state in HOLD_S:  # draining or starting: send it nothing new for a while
                    self.pool.hold(base, HOLD_S[state])
                    if response.status_code == 503 and len(failed | {base}) < len(self.pool):
                        failed.add(base)  # refused unserved: another instance takes it now
                        continue
                    if response.status_code == 503 and refused < REFUSALS:
                        # one URL before several replicas (a Service): the refusal closed its connection,
                        # and the next one reaches another replica behind it
                        refused += 1
                        continue
                return interpret(response, endpoint)
            except ModelServerAuth:
                if not reread:
                    raise
                reread = False  # keys expire; TorchServe writes the new ones to its key file
                self.token = read_key_file(self.key_file or "")
            except ModelServerError as exc:
                # Unreachable or 5xx: this instance is out for a while; another one gets the request.
                healthy = not isinstance(exc, ModelServerDown) or exc.retryable
                if not healthy and len(failed | {base}) < len(self.pool):
                    failed.add(base)
                    continue
                if not exc.retryable or attempt >= self.retries:
                    raise
                attempt += 1
                yield 0.5 * 2 ** (attempt - 1)
            finally:
                self.pool.done(base, healthy)

    def _unreachable(self, request: httpx.Request, exc: httpx.HTTPError) -> ModelServerDown:
        where = f"{request.url.scheme}://{request.url.netloc.decode()}"
        return ModelServerDown(f"model server unavailable at {where}: unreachable ({exc!r})")

    def _info(self, doc: dict) -> ModelInfo:
        return ModelInfo(self.model, str(doc["model"]), int(doc["dimension"]), doc.get("precision"))


class ModelClient(_Base):
    """Blocking client; one per thread (ingest gives each worker thread its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = httpx.Client(timeout=self.timeout)

    def embed_response(self, image: bytes, regions: str = "none") -> dict:
        """POST the raw bytes; the parsed JSON answer (see handler/wire.py), with the region
        vectors of scheme `regions` unless it is "none"."""
        steps = self._exchange(image, regions)
        step = next(steps)
        while True:  # drive the exchange: sleep or send, hand back the outcome
            outcome = None
            if isinstance(step, float):
                time.sleep(step)
            else:
                outcome = self._send(step)
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value

    def _send(self, request: httpx.Request) -> httpx.Response | ModelServerDown:
        try:
            return self.http.send(request)
        except httpx.HTTPError as exc:
            return self._unreachable(request, exc)

    def embed(self, image: bytes) -> np.ndarray:
        """Image bytes -> float32 L2-normalised vector `[D]`."""
        return decode_vector(self.embed_response(image))

    def info(self) -> ModelInfo:
        """Which model and dimension the server serves (embeds a tiny probe image)."""
        return self._info(self.embed_response(probe_image()))

    def close(self) -> None:
        self.http.close()


class AsyncModelClient(_Base):
    """Non-blocking client for the API: many requests in flight on one connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http = httpx.AsyncClient(timeout=self.timeout)

    async def embed_response(self, image: bytes, regions: str = "none") -> dict:
        steps = self._exchange(image, regions)
        step = next(steps)
        while True:
            outcome = await (asyncio.sleep(step) if isinstance(step, float) else self._send(step))
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value

    async def _send(self, request: httpx.Request) -> httpx.Response | ModelServerDown:
        try:
            return await self.http.send(request)
        except httpx.HTTPError as exc:
            return self._unreachable(request, exc)

    async def embed(self, image: bytes, regions: str = "none") -> tuple[dict, np.ndarray]:
        """(the server's answer, its vector `[D]`); the answer holds the region vectors asked for."""
        doc = await self.embed_response(image, regions)
        return doc, decode_vector(doc)

    async def info(self) -> ModelInfo:
        return self._info(await self.embed_response(probe_image()))

    async def ping(self) -> str:
        """ "ok" when every instance answers its ping, else what is wrong with which (the API is
        still served while at least one instance answers)."""
        problems = []
        for base in self.pool.urls:
            where = f"{base} " if len(self.pool) > 1 else ""
            try:
                response = await self.http.get(f"{base}/ping", headers=self._headers(), timeout=5.0)
                if response.status_code != 200:
                    problems.append(f"{where}ping answered {response.status_code}")
            except httpx.HTTPError as exc:
                problems.append(f"{where}unreachable: {exc!r}")
        if not problems:
            return "ok"
        return ("ok, degraded: " if len(problems) < len(self.pool) else "") + "; ".join(problems)

    async def aclose(self) -> None:
        await self.http.aclose()


def interpret(response: httpx.Response, endpoint: str) -> dict:
    """A 200 answer's JSON; else the matching error of the family."""
    if response.status_code == 200:
        try:
            return response.json()
        except ValueError as exc:
            raise ModelServerDown(f"{endpoint} answered 200 with no JSON: {response.text[:200]!r}") from exc
    text = response.text
    if response.status_code in (400, 401) and "InvalidKeyException" in text:
        raise ModelServerAuth(
            "model server rejected our bearer key (set LOOKALIKE_TS_TOKEN or LOOKALIKE_TS_KEY_FILE)", 401
        )
    if 400 <= response.status_code < 500:
        raise ImageRefused(response.status_code, _reason(response))
    raise ModelServerDown(f"model server answered {response.status_code}: {text[:200]}", response.status_code)


def _reason(response: httpx.Response) -> str:
    try:
        doc = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(doc, dict):
        return str(doc.get("error") or doc.get("message") or doc)
    return str(doc)
