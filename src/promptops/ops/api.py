"""Operational endpoints: liveness, readiness, Prometheus metrics. Public by design (no tenant data)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from promptops import __version__
from promptops.auth.deps import PUBLIC
from promptops.errors import ProblemError
from promptops.runtime import runtime_of

router = APIRouter(tags=["operations"], dependencies=[Depends(PUBLIC)])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Readiness: the database answers")
async def readyz(request: Request) -> dict[str, str]:
    runtime = runtime_of(request)
    try:
        async with runtime.db.transaction() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        raise ProblemError(
            f"Database not reachable: {type(exc).__name__}", code="not_ready", status=503, title="Not ready"
        )
    return {"status": "ready", "database": runtime.db.dialect}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
