"""The API's state and its one way of reading an uploaded image."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio.to_thread
import numpy as np
from fastapi import Request
from starlette.concurrency import run_in_threadpool

from lookalike.api.metrics import Metrics
from lookalike.api.thumbnails import Thumbnails
from lookalike.errors import BadQuery, LookalikeError, UploadTooLarge
from lookalike.index import VectorIndex, live, open_index
from lookalike.review.store import ReviewStore, open_review
from lookalike.serving.client import AsyncModelClient, ModelInfo
from lookalike.settings import Settings
from lookalike.timing import Stages
from lookalike.verify import blas, features
from lookalike.verify.features import Features
from lookalike.verify.store import FeatureStore

T = TypeVar("T")
logger = logging.getLogger(__name__)
MULTIPART_SLACK = 64 * 1024  # headers and boundaries around the file in a multipart body
LIVE_CHECK_S = 1.0  # how often the live pair (lookalike.index.live) is read again: a rollout's switch reaches
# every replica within this, and each request keeps the pair it started with


@dataclass(frozen=True)
class Served:
    """A model-server endpoint's client and the index of its vectors: a request embeds with the one
    and searches or writes the other, never a vector of one model in an index of another."""

    pair: live.Pair
    client: AsyncModelClient
    index: VectorIndex


class TimedPool(ThreadPoolExecutor):
    """The verification pool, timed for the replica's signal: a request hands it all its candidates
    at once (`map`); it waits from then until its first candidate is taken (its queue time: other
    requests' candidates ahead of it) and is computed for the sum of its candidates' run times.
    Its own candidates queueing behind each other is its parallelism, not load, and not counted."""

    def __init__(self, workers: int, prefix: str, timed: Callable[[float, float], None]) -> None:
        super().__init__(workers, thread_name_prefix=prefix)
        self.timed = timed
        self.unstarted = 0  # requests whose candidates wait, none taken yet
        self._lock = threading.Lock()

    def map(self, fn: Callable[..., Any], *iterables: Any, timeout: float | None = None,
            chunksize: int = 1) -> Iterator[Any]:  # fmt: skip
        submitted = time.perf_counter()
        first: list[float] = []
        ran: list[float] = []
        with self._lock:
            self.unstarted += 1

        def run(*args: Any) -> Any:
            started = time.perf_counter()
            with self._lock:
                if not first:
                    first.append(started)
                    self.unstarted -= 1
            try:
                return fn(*args)
            finally:
                ran.append(time.perf_counter() - started)

        try:
            results = list(super().map(run, *iterables, timeout=timeout))
        finally:
            with self._lock:
                if not first:  # nothing to judge, or cancelled before a candidate was taken
                    self.unstarted -= 1
        if first:
            self.timed(first[0] - submitted, sum(ran))
        return iter(results)

    def waiting(self) -> int:
        return self.unstarted


class Service:
    """The API's state: the live pair (an async client for its model-server endpoint and its index,
    opened on first need, read again every LIVE_CHECK_S so a blue/green switch reaches it; while a
    rollout builds, the next pair too, which every write reaches), and the metrics; `embed` and
    `indexed` time the two halves of every request."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.thumbnails = Thumbnails(settings.thumb_dir, settings.thumb_size)
        self.features = FeatureStore.of(settings)
        self.judges = TimedPool(settings.verify_threads, "verify", metrics.signal.timed)  # search.verified
        blas.one_thread_each()  # the judges' matrix products, one thread each (lookalike.verify.blas)
        # No retries: a search answers at once; ingest is where overload is waited out.
        self.model = AsyncModelClient.from_settings(settings, retries=0)
        self.info: ModelInfo | None = None
        self.precision: str | None = None  # what the model server's last answer ran at
        self.review: ReviewStore | None = None
        self.draining = False  # set on SIGTERM (lookalike.api.serve): /ready answers 503
        self._opening = asyncio.Lock()
        self._clients: dict[str, AsyncModelClient] = {settings.model: self.model}  # by endpoint
        self._indexes: dict[live.Pair, VectorIndex] = {}
        self._live: Served | None = None
        self._next: Served | None = None
        self._read_at = 0.0

    @property
    def index(self) -> VectorIndex | None:
        """The live index, once opened."""
        return self._live.index if self._live is not None else None

    async def in_thread(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call(*args, **kwargs)` on the API's thread pool, its wait and run times told to the signal."""
        submitted = time.perf_counter()
        started = 0.0

        def run() -> T:
            nonlocal started
            started = time.perf_counter()
            return call(*args, **kwargs)

        try:
            return await run_in_threadpool(run)
        finally:
            if started:
                self.metrics.signal.timed(started - submitted, time.perf_counter() - started)

    def waiting(self) -> int:
        """Work queued for a thread now: the API's pool, and the verification pool."""
        limiter = anyio.to_thread.current_default_thread_limiter()
        return limiter.statistics().tasks_waiting + self.judges.waiting()

    async def ready_index(self) -> VectorIndex:
        return (await self.current()).index

    async def current(self) -> Served:
        """The live pair, opened on first use (the model server may start later) and read again
        every LIVE_CHECK_S; a request takes it once and keeps it."""
        if self._live is not None and (time.monotonic() - self._read_at < LIVE_CHECK_S or self._opening.locked()):
            return self._live
        async with self._opening:
            if self._live is None:
                await self._read_live()
            elif time.monotonic() - self._read_at >= LIVE_CHECK_S:
                try:
                    await self._read_live()
                except LookalikeError as exc:  # a hiccup of the index: the pair in hand still serves
                    logger.warning("reading the live record failed (%s); the last one serves", exc.reason)
                    self._read_at = time.monotonic()
        assert self._live is not None
        return self._live

    async def write_targets(self) -> list[Served]:
        """Where a write goes: the live pair, and while a blue/green rollout builds, the next one too."""
        served = await self.current()
        return [served] if self._next is None else [served, self._next]

    async def _read_live(self) -> None:
        state = await run_in_threadpool(live.read, self.settings)
        pair = state.live
        if pair is None:  # no rollout ever: the configured endpoint and the model it serves
            info = self.info or await self.model.info()
            self.info, self.precision = info, self.precision or info.precision
            pair = live.Pair(self.settings.model, info.model, info.dimension)
        served = await self._served(pair)
        if self._live is not None and served.pair != self._live.pair:
            logger.warning("live model now %s (%s, index %s)", pair.endpoint, pair.model, pair.index or "embedded")
        self._live = served
        self._next = await self._served(state.next) if state.next else None
        self._read_at = time.monotonic()

    async def _served(self, pair: live.Pair) -> Served:
        settings = pair.settings(self.settings)
        if pair.endpoint not in self._clients:
            self._clients[pair.endpoint] = AsyncModelClient.from_settings(settings, retries=0)
        if pair not in self._indexes:
            self._indexes[pair] = await run_in_threadpool(open_index, settings, pair.model, pair.dimension)
        return Served(pair, self._clients[pair.endpoint], self._indexes[pair])

    async def ready_review(self) -> ReviewStore:
        """The store of de-duplication runs and decisions (lookalike.review), opened on first need."""
        if self.review is None:
            self.review = await run_in_threadpool(open_review, self.settings)
        return self.review

    async def embed(self, image: bytes, regions: str = "none", served: Served | None = None):
        """(TorchServe's document, the float32 vector) for `image` by the endpoint of `served` (the
        live pair), timed as embedding time; the document holds the region vectors of scheme `regions`."""
        client = (served or await self.current()).client
        with self.stages().timed("embed"):
            doc, vector = await client.embed(image, regions)
        self.precision = doc.get("precision", self.precision)
        return doc, vector

    async def embed_and_extract(self, image: bytes, extract: bool = True, served: Served | None = None,
                                ) -> tuple[dict, np.ndarray, Features | None]:  # fmt: skip
        """`embed`, and with `extract` the image's local features too, made from the same bytes on
        another core while the model server embeds them (timed as stage `extract`); else None."""
        if not extract:
            return (*await self.embed(image, served=served), None)
        extracting = asyncio.ensure_future(self._extracted(image))
        try:
            doc, vector = await self.embed(image, served=served)
        except BaseException:
            extracting.cancel()
            raise
        return doc, vector, await extracting

    async def _extracted(self, image: bytes) -> Features:
        with self.stages().timed("extract"):
            return await self.in_thread(features.extract, image)

    async def indexed(self, call: Callable[..., T], *args, stage: str | None = "index", served: Served | None = None,
                      **kwargs) -> T:  # fmt: skip
        """`call(index, *args, **kwargs)` in the thread pool on the index of `served` (the live pair),
        timed as `stage` (index time; knn for a k-NN query; None: the call times its own stages,
        given `stages=self.stages()`)."""
        index = (served or await self.current()).index
        if stage is None:
            return await self.in_thread(call, index, *args, **kwargs)
        with self.stages().timed(stage):
            return await self.in_thread(call, index, *args, **kwargs)

    def stages(self) -> Stages:
        """A request's stage timer whose every stage lands on /metrics (lookalike_api_stage_seconds)."""
        return Stages(self.metrics.observe_stage)

    async def health(self) -> tuple[bool, dict]:
        report: dict = {"model_server": await self.model.ping()}
        try:
            index = await self.ready_index()
            await run_in_threadpool(index.ping)
            report["index"] = await run_in_threadpool(index.describe)
        except LookalikeError as exc:
            report["index"] = f"unavailable: {exc.reason}"
        # which precision serves: the model server's last answer says (int8, bf16, fp32 or fp16)
        report["precision"] = self.precision or "unknown (no answer from the model server yet)"
        healthy = report["model_server"].startswith("ok") and isinstance(report["index"], dict)
        return healthy, {"status": "ok" if healthy else "unavailable", **report}

    async def readiness(self) -> list[str]:
        """Why this replica should not take traffic now (empty: ready): draining, no model server
        answering, or the index not open (opening it embeds a probe image: the path is warm)."""
        problems = ["draining"] if self.draining else []
        model = await self.model.ping()
        if not model.startswith("ok"):
            problems.append(f"model server: {model}")
            return problems
        try:
            index = await self.ready_index()
            await run_in_threadpool(index.ping)
        except LookalikeError as exc:
            problems.append(f"index: {exc.reason}")
        return problems

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self.judges.shutdown(wait=True)
        self.features.close()
        if self.review is not None:
            await run_in_threadpool(self.review.close)
        for index in self._indexes.values():
            await run_in_threadpool(index.close)


def service_of(request: Request) -> Service:
    """The app's Service (made by create_app's lifespan)."""
    return request.app.state.service


async def read_upload(request: Request, limit: int) -> tuple[bytes, dict[str, str]]:
    """The image from a multipart field `image` (or `file`) or the raw body; 413 past `limit` bytes.
    Also returns the multipart form's text fields (none for a raw body)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + MULTIPART_SLACK:
        raise UploadTooLarge(f"upload is {length} bytes; the limit is {limit} bytes")
    content_type = request.headers.get("content-type", "")
    fields: dict[str, str] = {}
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("image") or form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadQuery("multipart upload needs a file field named 'image'")
        data = await upload.read(limit + 1)
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
    else:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(f"upload is over the limit of {limit} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
    if len(data) > limit:
        raise UploadTooLarge(f"upload is over the limit of {limit} bytes")
    if not data:
        raise BadQuery("empty upload: send the image as the body or as the multipart field 'image'")
    return data, fields
