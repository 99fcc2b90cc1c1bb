"""De-duplication for people: the last run's copy groups, paged, and the decisions taken on them.

    GET  /duplicates?status=pending&page=1&per_page=20     groups still to review (or decided, all);
                                                            a browser (Accept: text/html) gets the review page
    POST /duplicates/decisions                              keep / not_duplicates / resolved  [API key]

The groups come from the last `lookalike dedup` run, kept in the index (lookalike.review); every
decision is applied when groups are read, so a decided group leaves the pending list at once and
stays decided in later runs and after restarts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from lookalike.api.answers import DecisionsAnswer, DuplicatesPage
from lookalike.api.contract import errors
from lookalike.api.security import require_read, require_write
from lookalike.api.service import service_of
from lookalike.errors import BadQuery, NotFound
from lookalike.review.decisions import PENDING, Decision, apply_all, members, status

router = APIRouter(prefix="/duplicates")
PAGE = Path(__file__).parent / "static" / "duplicates.html"


Id = Annotated[str, Field(min_length=1)]
Ids = Annotated[set[Id], Field(min_length=2, max_length=1000, description="every image the decision is about")]


class KeepIn(BaseModel):
    """`keep` is kept; the other ids are its duplicates (`keep` must be one of `ids`)."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["keep"]
    ids: Ids
    keep: Id = Field(description="the image kept (one of ids)")


class SettleIn(BaseModel):
    """not_duplicates: no two of `ids` are duplicates; resolved: the group as it stands is done."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["not_duplicates", "resolved"]
    ids: Ids


DecisionIn = Annotated[KeepIn | SettleIn, Field(discriminator="decision")]


class DecisionsIn(BaseModel):
    decisions: list[DecisionIn] = Field(min_length=1, max_length=1000)


@router.get("", dependencies=[Depends(require_read)], response_model=None,
            responses={200: {"model": DuplicatesPage, "content": {"text/html": {}},
                             "description": "the groups as JSON; the review page to a browser (Accept: text/html)"},
                       **errors(401, 503)},
            summary="The last de-duplication run's copy groups, with the decisions taken on them, paged")  # fmt: skip
async def get_duplicates(
    request: Request,
    status_: Literal["pending", "decided", "all"] = Query(
        "pending", alias="status", description="pending: not decided yet; decided: kept or resolved; all"
    ),
    page: int = Query(1, ge=1, le=1_000_000),
    per_page: int = Query(20, ge=1, le=100),
) -> dict | FileResponse:
    if request.headers.get("accept", "").startswith("text/html"):  # a browser opening /duplicates
        return FileResponse(PAGE, media_type="text/html")
    service = service_of(request)
    review = await service.ready_review()
    run, groups, decided = await run_in_threadpool(lambda: (review.run(), review.groups(), review.decisions()))
    groups = apply_all(groups, decided)
    counts = {"pending": 0, "keep": 0, "resolved": 0}
    for group in groups:
        counts[status(group)] += 1
    chosen = [group for group in groups if status_ == "all" or (status(group) == PENDING) == (status_ == "pending")]
    shown = chosen[(page - 1) * per_page : page * per_page]
    ids = [doc_id for group in shown for doc_id in members(group)]
    indexed = await service.indexed(lambda index: index.existing(ids)) if ids else set()
    for group in shown:
        group["deleted"] = [doc_id for doc_id in members(group) if doc_id not in indexed]  # since the run
    return {"run": run, "status": status_, "counts": counts, "total": len(chosen), "page": page,
            "per_page": per_page, "groups": shown}  # fmt: skip


@router.post("/decisions", dependencies=[Depends(require_write)], response_model=DecisionsAnswer,
             response_model_exclude_unset=True, responses=errors(400, 401, 403, 404, 422, 503),
             summary="Record decisions on groups: keep one, not duplicates, or resolved (each replaces an "
                     "earlier decision about the same ids)")  # fmt: skip
async def post_decisions(request: Request, body: DecisionsIn) -> dict:
    service = service_of(request)
    wanted = sorted({doc_id for decision in body.decisions for doc_id in decision.ids})
    indexed = await service.indexed(lambda index: index.existing(wanted))
    unknown = [doc_id for doc_id in wanted if doc_id not in indexed]
    if unknown:
        raise NotFound(f"no image with id {', '.join(unknown[:5])}" + (" ..." if len(unknown) > 5 else ""))
    try:
        made = [Decision(decision.decision, tuple(decision.ids), getattr(decision, "keep", None))
                for decision in body.decisions]  # fmt: skip
    except ValueError as exc:  # beyond a schema: the kept image must be one of the ids
        raise BadQuery(str(exc)) from exc
    review = await service.ready_review()
    await run_in_threadpool(review.record, made)
    return {"recorded": len(made), "decisions": [{**decision.to_dict(), "key": decision.key} for decision in made]}
