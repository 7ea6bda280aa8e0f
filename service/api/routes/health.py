"""Liveness and readiness probes (open, outside `/api/v1`)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from boundsweep.service.api.deps import EngineDep
from fastapi import APIRouter
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])
logger = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    """Answers as long as the server runs; touches nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable",
    responses={503: {"description": "The database cannot be reached"}},
)
def readyz(engine: EngineDep) -> JSONResponse:
    """`SELECT 1` on the database; 503 when it fails."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        logger.warning("readiness check failed: %s", exc)
        return JSONResponse(
            status_code=503, content={"status": "unavailable", "detail": "Database unreachable"}
        )
    return JSONResponse(content={"status": "ready", "database": engine.dialect.name})
