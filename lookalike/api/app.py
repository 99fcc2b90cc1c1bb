"""The search-by-image HTTP API a site calls, and its page (FastAPI; OpenAPI docs at /docs).

    GET    /                       the search page (lookalike/api/static/)
    POST   /search                 image as multipart `image` or the raw body; ?k=&category=&tags=&min_similarity=
                                   or ?per_category=N for the best N in each category
    GET    /similar/{id}           more like an indexed image (itself excluded), same filters
    GET    /categories             category names and image counts
    GET    /images/{id}            an indexed image's metadata;  /images/{id}/thumbnail: a small JPEG
    PUT    /images/{id}            add or replace an image (multipart image + category, tags, source)  [API key]
    DELETE /images/{id}            remove it                                                           [API key]
    GET    /duplicates             the last `lookalike dedup` run's groups, paged (?status=pending|decided|all);
                                   a browser gets the review page
    POST   /duplicates/decisions   keep one / not duplicates / resolved                                [API key]
    GET    /healthz, /metrics      model server and index checked; Prometheus metrics
    GET    /live, /ready           the probes apart: the process answers; ready for traffic (not draining)

    lookalike api --port 8000

Every error, validation errors included, is `{"error": reason, "status": code}`: 401/403 for
keys, 404 unknown id, 413 over the upload limit, the model server's 4xx and reason (415 not an
image, 422 undecodable), 422 bad parameters, 503 when the model server or the index is down.
Embedding is async (httpx) and index calls run in a thread pool, so requests never block each
other on I/O.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from lookalike import __version__
from lookalike.api import catalogue_routes, duplicates_routes, probe_routes, search_routes
from lookalike.api.metrics import CONTENT_TYPE, Metrics
from lookalike.api.service import Service
from lookalike.errors import LookalikeError
from lookalike.malloc import map_large_buffers
from lookalike.serving.endpoints import REPLICA_HEADER
from lookalike.serving.signal import SAMPLE_S
from lookalike.settings import Settings

STATIC = Path(__file__).parent / "static"
UNCOUNTED = frozenset({"/metrics", "/live", "/ready", "/healthz"})  # probes and scrapes are not load
logger = logging.getLogger(__name__)


def error(status: int, reason: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "status": status}, status_code=status, headers=headers)


def validation_reason(exc: RequestValidationError) -> str:
    parts = []
    for problem in exc.errors():
        where = ".".join(str(part) for part in problem.get("loc", ()) if part not in ("query", "path", "body"))
        parts.append(f"{where}: {problem.get('msg')}" if where else str(problem.get("msg")))
    return "; ".join(parts) or "invalid request"


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method the OpenAPI document lists for `path` (a path template's {param} is one segment)."""
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations}
    return sorted(methods)


def answer_errors(app: FastAPI) -> None:
    """Every failure answers in one shape, {"error": reason, "status": code} (contract.Problem)."""

    @app.exception_handler(LookalikeError)
    async def lookalike_error(request: Request, exc: LookalikeError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error(exc.status, exc.reason, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, validation_reason(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # Starlette's Allow names one route's methods; a path may have several
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.url.path))}
        return error(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); the API log has the details")


async def sample(service: Service) -> None:
    """Sample the requests waiting for a thread, for the signal's windowed mean."""
    while True:
        service.metrics.signal.set_waiting(service.waiting())
        service.metrics.signal.sample()
        await asyncio.sleep(SAMPLE_S)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    metrics = Metrics(settings.signal_window)
    map_large_buffers()  # uploads go back to the OS when their request ends (lookalike.malloc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = service = Service(settings, metrics)
        sampling = asyncio.ensure_future(sample(service))
        yield
        sampling.cancel()
        await service.close()

    app = FastAPI(title="Lookalike search by image", version=__version__, lifespan=lifespan)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])  # fmt: skip

    answer_errors(app)

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        counted = request.url.path not in UNCOUNTED
        if counted:
            metrics.signal.started()
        try:
            response = await call_next(request)
        finally:
            if counted:
                metrics.signal.finished()
        if request.app.state.service.draining:  # a balancer or client sends this replica nothing new
            response.headers[REPLICA_HEADER] = "draining"
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "(unmatched)"
        metrics.observe(template, request.method, response.status_code, time.perf_counter() - started)
        return response

    app.include_router(probe_routes.router)
    app.include_router(search_routes.router)
    app.include_router(catalogue_routes.router)
    app.include_router(duplicates_routes.router)

    @app.get("/metrics", include_in_schema=False)
    async def get_metrics(request: Request) -> Response:
        service: Service = request.app.state.service
        index = service.index
        page = metrics.render(index.count if index is not None else None, service.waiting(), service.draining)
        return Response(page, media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
