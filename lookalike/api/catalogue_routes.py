"""The site's catalogue: read an image's metadata and thumbnail; upsert and delete (API key)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from lookalike_handler.wire import decode_regions
from starlette.concurrency import run_in_threadpool

from lookalike.api.answers import ImageOut, PutAnswer
from lookalike.api.contract import UPLOAD_ERRORS, errors, image_body
from lookalike.api.security import require_read, require_write
from lookalike.api.service import read_upload, service_of
from lookalike.errors import IndexUnavailable, NotFound
from lookalike.index import VectorIndex
from lookalike.index.documents import Doc
from lookalike.verify.features import extract

router = APIRouter(prefix="/images")


def found(index: VectorIndex, doc_id: str) -> Doc:
    doc = index.get(doc_id)
    if doc is None:
        raise NotFound(f"no image with id {doc_id}")
    return doc


@router.get("/{doc_id}", dependencies=[Depends(require_read)], response_model=ImageOut,
            response_model_exclude_unset=True, responses=errors(401, 404, 503),
            summary="An indexed image's metadata")  # fmt: skip
async def get_image(request: Request, doc_id: str) -> dict:
    doc = await service_of(request).indexed(found, doc_id)
    return doc.metadata()


@router.get("/{doc_id}/thumbnail", dependencies=[Depends(require_read)], response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}}, "description": "a JPEG of at most LOOKALIKE_THUMB_SIZE"},
                       **errors(401, 404, 503)},
            summary="A small JPEG of an indexed image (made on upload, or from its source file once)")  # fmt: skip
async def get_thumbnail(request: Request, doc_id: str) -> FileResponse:
    service = service_of(request)
    doc = await service.indexed(found, doc_id)
    path = await run_in_threadpool(service.thumbnails.get, doc)
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "public, max-age=3600"})


@router.put("/{doc_id}", openapi_extra=image_body("category", "tags", "source"), dependencies=[Depends(require_write)],
            response_model=PutAnswer, response_model_exclude_unset=True,
            responses={201: {"model": PutAnswer, "description": "added (200: replaced)"},
                       **errors(401, 403, *UPLOAD_ERRORS)},
            summary="Add or replace an image: multipart `image` + category, tags, source (or raw body)")  # fmt: skip
async def put_image(
    request: Request,
    response: Response,
    doc_id: str,
    category: str | None = Query(None, description="(or the multipart field)"),
    tags: str | None = Query(None, description="comma-separated (or the multipart field)"),
    source: str | None = Query(None, description="the image's URL on the site (or the multipart field)"),
) -> dict:
    service = service_of(request)
    image, fields = await read_upload(request, service.settings.max_image_bytes)
    given = {"category": category, "tags": tags, "source": source} | {k: v for k, v in fields.items() if v}
    tag_list = [tag.strip() for tag in (given["tags"] or "").split(",") if tag.strip()]
    # the live pair, and while a blue/green rollout builds, the next one too: a write reaches both
    targets = await service.write_targets()
    answers = await asyncio.gather(*(service.embed(image, service.settings.regions, served=t) for t in targets))
    docs = [Doc.of_image(doc_id, vector, doc_meta["model"], image, given["source"] or f"upload:{doc_id}",
                         given["category"] or None, tag_list, service.settings.regions, decode_regions(doc_meta))
            for doc_meta, vector in answers]  # fmt: skip
    existed = await service.indexed(lambda index: bool(index.existing([doc_id])), served=targets[0])
    for target, doc in zip(targets, docs, strict=True):
        _, failures = await service.indexed(lambda index, doc=doc: index.upsert([doc]), served=target)
        if failures:
            raise IndexUnavailable(f"the index refused {doc_id}: {failures[0][1]}")
        await service.indexed(lambda index: index.refresh(), served=target)
    doc = docs[0]
    await run_in_threadpool(service.thumbnails.make, doc_id, image)
    await run_in_threadpool(lambda: service.features.put(doc_id, extract(image)))  # the bytes are in hand
    response.status_code = 200 if existed else 201
    return {"id": doc_id, "created": not existed, **doc.metadata()}


@router.delete("/{doc_id}", status_code=204, dependencies=[Depends(require_write)], summary="Remove an image",
               responses=errors(401, 403, 404, 503))  # fmt: skip
async def delete_image(request: Request, doc_id: str) -> Response:
    service = service_of(request)
    live, *building = await service.write_targets()
    for target in building:  # a blue/green rollout builds: the next index loses it too
        await service.indexed(lambda index: index.delete(doc_id), served=target)
        await service.indexed(lambda index: index.refresh(), served=target)
    if not await service.indexed(lambda index: index.delete(doc_id), served=live):
        raise NotFound(f"no image with id {doc_id}")
    await service.indexed(lambda index: index.refresh(), served=live)
    service.thumbnails.drop(doc_id)
    service.features.drop(doc_id)
    return Response(status_code=204)
