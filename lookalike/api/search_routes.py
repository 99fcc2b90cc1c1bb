"""Read routes: search by image (or per category), more like this, categories, health."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from lookalike import search
from lookalike.api.answers import Categories, Health, SearchAnswer, SimilarAnswer
from lookalike.api.contract import UPLOAD_ERRORS, errors, image_body
from lookalike.api.security import require_read
from lookalike.api.service import read_upload, service_of

router = APIRouter()


def filters(
    settings, k: int | None, category: str | None, tags: list[str] | None, min_similarity: float | None
) -> dict:
    split = [tag for value in tags or [] for tag in value.split(",") if tag]
    return {"k": k or settings.default_k, "category": category, "tags": split, "min_similarity": min_similarity,
            "max_k": settings.max_k}  # fmt: skip


@router.post("/search", openapi_extra=image_body(), dependencies=[Depends(require_read)],
             response_model=SearchAnswer, response_model_exclude_unset=True, responses=errors(401, *UPLOAD_ERRORS),
             summary="Find indexed images that look like the uploaded one")  # fmt: skip
async def post_search(
    request: Request,
    k: int | None = Query(None, ge=1, description="number of hits (LOOKALIKE_DEFAULT_K; at most LOOKALIKE_MAX_K)"),
    category: str | None = Query(None, description="only this category"),
    tags: list[str] | None = Query(None, description="only images with all these tags (repeat or comma-separate)"),
    min_similarity: float | None = Query(None, ge=-1, le=1, description="drop hits below this cosine"),
    verify: bool = Query(
        True,
        description="judge the nearest LOOKALIKE_VERIFY_CANDIDATES with local features: verified copies, then "
        "parts, first; each hit gets its verdict and box. false: cosine order, no verdicts",
    ),
    per_category: int | None = Query(
        None,
        ge=1,
        le=search.PER_CATEGORY_MAX,
        description="instead: the best N in each category (an index of at most "
        "LOOKALIKE_MAX_CATEGORIES categories, else 400)",
    ),
) -> dict:
    service = service_of(request)
    started = time.perf_counter()
    image, _ = await read_upload(request, service.settings.max_image_bytes)
    served = await service.current()  # one pair for the whole request: the query's model is the index's
    doc, vector, query = await service.embed_and_extract(image, extract=verify and not per_category, served=served)
    answer: dict = {"model": doc["model"], "dimension": int(doc["dimension"])}
    if doc.get("archive"):
        answer["archive"] = doc["archive"]
    if per_category:
        groups = await service.indexed(search.per_category, vector, per_category, stage="knn", served=served,
                                       max_categories=service.settings.max_categories)  # fmt: skip
        answer["per_category"] = {name: [hit.to_dict() for hit in hits] for name, hits in groups.items()}
    else:
        chosen = filters(service.settings, k, category, tags, min_similarity)
        if query is not None:
            hits = await service.indexed(search.verified, service.features, query, vector, stage=None,
                                         candidates=service.settings.verify_candidates, stages=service.stages(),
                                         pool=service.judges, served=served, **chosen)  # fmt: skip
        else:
            hits = await service.indexed(search.by_vector, vector, stage="knn", served=served, **chosen)
        answer["hits"] = [hit.to_dict() for hit in hits]
    return {**answer, "took_ms": round((time.perf_counter() - started) * 1000, 1)}


@router.get("/similar/{doc_id}", dependencies=[Depends(require_read)], response_model=SimilarAnswer,
            response_model_exclude_unset=True, responses=errors(400, 401, 404, 422, 503),
            summary="Find indexed images that look like an indexed one (itself excluded)")  # fmt: skip
async def get_similar(
    request: Request,
    doc_id: str,
    k: int | None = Query(None, ge=1, description="number of hits (LOOKALIKE_DEFAULT_K; at most LOOKALIKE_MAX_K)"),
    category: str | None = Query(None),
    tags: list[str] | None = Query(None),
    min_similarity: float | None = Query(None, ge=-1, le=1),
    verify: bool = Query(
        True,
        description="judge the nearest LOOKALIKE_VERIFY_CANDIDATES against the image's stored "
        "local features, as POST /search does; false: cosine order, no verdicts",
    ),
) -> dict:
    service = service_of(request)
    started = time.perf_counter()
    chosen = filters(service.settings, k, category, tags, min_similarity)
    if verify:
        hits = await service.indexed(search.verified_like, service.features, doc_id, stage=None,
                                     candidates=service.settings.verify_candidates, stages=service.stages(),
                                     pool=service.judges, **chosen)  # fmt: skip
    else:
        hits = await service.indexed(search.more_like_this, doc_id, stage="knn", **chosen)
    return {"id": doc_id, "took_ms": round((time.perf_counter() - started) * 1000, 1),
            "hits": [hit.to_dict() for hit in hits]}  # fmt: skip


@router.get("/categories", dependencies=[Depends(require_read)], response_model=Categories, responses=errors(401, 503),
            summary="Category names and image counts")  # fmt: skip
async def get_categories(request: Request) -> dict:
    counts = await service_of(request).indexed(lambda index: index.categories())
    return {"categories": [{"name": name, "count": count} for name, count in counts.items()]}


@router.get("/healthz", summary="Model server and index both checked (open to load balancers)",
            responses={200: {"model": Health, "description": "both answer"},
                       503: {"model": Health,
                             "description": "the model server or the index does not answer: its field says why"}},
            )  # fmt: skip
async def healthz(request: Request) -> JSONResponse:
    healthy, report = await service_of(request).health()
    return JSONResponse(report, status_code=200 if healthy else 503)
