"""The probes a load balancer or an orchestrator asks, apart (open: no key).

GET /live: the process answers; a failure means restart it.
GET /ready: it should take traffic: a model server answers, the index is open and answers, and it
is not draining (after SIGTERM, lookalike.api.serve); a failure means send elsewhere, not restart.
GET /healthz keeps the detailed report (each part's state) for people.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from lookalike.api.answers import Probe
from lookalike.api.service import service_of

router = APIRouter()


@router.get("/live", summary="Liveness: the process answers (restart it when this fails)", response_model=Probe)
async def live() -> dict:
    return {"status": "alive", "problems": []}


@router.get("/ready", summary="Readiness: model server and index answer, not draining (send elsewhere when 503)",
            responses={200: {"model": Probe, "description": "ready for traffic"},
                       503: {"model": Probe, "description": "not ready: `problems` says why"}},
            )  # fmt: skip
async def ready(request: Request) -> JSONResponse:
    problems = await service_of(request).readiness()
    return JSONResponse({"status": "not ready" if problems else "ready", "problems": problems},
                        status_code=503 if problems else 200)  # fmt: skip
