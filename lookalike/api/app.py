"""The search-by-image HTTP API a site calls (FastAPI; OpenAPI docs at /docs).

    POST /search          image as multipart field `image` or as the raw body; ?k=&category=&tags=&min_similarity=
    GET  /similar/{id}    look-alikes of an indexed image (itself excluded), same query parameters
    GET  /healthz         model server and index both checked; 503 names what is down

    lookalike api --port 8000

Errors are `{"error": reason, "status": code}`: 413 over the upload limit, the model server's
4xx and reason for an undecodable image, 503 when the model server or the index is down.
Embedding calls are async (httpx) and index calls run in a thread pool, so requests never
block each other on I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lookalike import search
from lookalike.errors import BadQuery, LookalikeError, UploadTooLarge
from lookalike.index import VectorIndex, open_index
from lookalike.serving.client import AsyncModelClient, ModelInfo
from lookalike.settings import Settings

logger = logging.getLogger(__name__)
MULTIPART_SLACK = 64 * 1024  # headers and boundaries around the file in a multipart body


class Service:
    """The API's state: one async client for TorchServe, and the index, opened on first need."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # No retries: a search answers at once; ingest is where overload is waited out.
        self.model = AsyncModelClient.from_settings(settings, retries=0)
        self.info: ModelInfo | None = None
        self.index: VectorIndex | None = None
        self._opening = asyncio.Lock()

    async def ready_index(self) -> VectorIndex:
        """Open the index for the served model on first use (the model server may start later)."""
        if self.index is not None:
            return self.index
        async with self._opening:
            if self.index is None:
                info = await self.model.info()
                self.index = await run_in_threadpool(open_index, self.settings, info.model, info.dimension)
                self.info = info
        return self.index

    async def health(self) -> tuple[bool, dict]:
        report: dict = {"model_server": await self.model.ping()}
        try:
            index = await self.ready_index()
            await run_in_threadpool(index.ping)
            report["index"] = await run_in_threadpool(index.describe)
        except LookalikeError as exc:
            report["index"] = f"unavailable: {exc.reason}"
        healthy = report["model_server"] == "ok" and isinstance(report["index"], dict)
        return healthy, {"status": "ok" if healthy else "unavailable", **report}

    async def close(self) -> None:
        await self.model.aclose()
        if self.index is not None:
            await run_in_threadpool(self.index.close)


async def read_upload(request: Request, limit: int) -> bytes:
    """The image from a multipart field `image` (or `file`) or the raw body; 413 past `limit` bytes."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + MULTIPART_SLACK:
        raise UploadTooLarge(f"upload is {length} bytes; the limit is {limit} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("image") or form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadQuery("multipart upload needs a file field named 'image'")
        data = await upload.read(limit + 1)
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
    return data


IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"image": {"type": "string", "format": "binary"}}}
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = Service(settings)
        yield
        await app.state.service.close()

    app = FastAPI(title="Lookalike search by image", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(LookalikeError)
    async def lookalike_error(request: Request, exc: LookalikeError) -> JSONResponse:
        return JSONResponse({"error": exc.reason, "status": exc.status}, status_code=exc.status)

    def filters(k: int, category: str | None, tags: list[str] | None, min_similarity: float | None) -> dict:
        split = [tag for value in tags or [] for tag in value.split(",") if tag]
        return {"k": k, "category": category, "tags": split, "min_similarity": min_similarity,
                "max_k": settings.max_k}  # fmt: skip

    @app.post("/search", openapi_extra=IMAGE_BODY, summary="Find indexed images that look like the uploaded one")
    async def post_search(
        request: Request,
        k: int = Query(settings.default_k, ge=1, le=settings.max_k, description="number of hits"),
        category: str | None = Query(None, description="only this category"),
        tags: list[str] | None = Query(None, description="only images with all these tags (repeat or comma-separate)"),
        min_similarity: float | None = Query(None, ge=-1, le=1, description="drop hits below this cosine"),
    ) -> dict:
        service: Service = request.app.state.service
        started = time.perf_counter()
        image = await read_upload(request, settings.max_image_bytes)
        doc, vector = await service.model.embed(image)
        index = await service.ready_index()
        hits = await run_in_threadpool(search.by_vector, index, vector, **filters(k, category, tags, min_similarity))
        return {"model": doc["model"], "dimension": int(doc["dimension"]),
                "took_ms": round((time.perf_counter() - started) * 1000, 1),
                "hits": [hit.to_dict() for hit in hits]}  # fmt: skip

    @app.get("/similar/{doc_id}", summary="Find indexed images that look like an indexed one")
    async def get_similar(
        request: Request,
        doc_id: str,
        k: int = Query(settings.default_k, ge=1, le=settings.max_k),
        category: str | None = Query(None),
        tags: list[str] | None = Query(None),
        min_similarity: float | None = Query(None, ge=-1, le=1),
    ) -> dict:
        service: Service = request.app.state.service
        started = time.perf_counter()
        index = await service.ready_index()
        hits = await run_in_threadpool(
            search.more_like_this, index, doc_id, **filters(k, category, tags, min_similarity)
        )
        return {"id": doc_id, "took_ms": round((time.perf_counter() - started) * 1000, 1),
                "hits": [hit.to_dict() for hit in hits]}  # fmt: skip

    @app.get("/healthz", summary="Model server and index both checked")
    async def healthz(request: Request) -> JSONResponse:
        healthy, report = await request.app.state.service.health()
        return JSONResponse(report, status_code=200 if healthy else 503)

    return app
