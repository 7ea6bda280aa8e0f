"""Every error leaves as JSON `{"detail": ...}`; nothing internal reaches a client.

* 422: `detail` is a list of `{"loc", "msg", "type"}`; `loc` names the field (`["body",
  "arms", 0, "space", "gamma"]`), `msg` says what is wrong and, where the domain knows them,
  the valid choices. The submitted input is not echoed back.
* Malformed JSON: 422 with `loc ["body", <character offset>]` and the parser's reason.
* 413: the body limit in bytes. 401/403/404/409: a sentence.
* A campaign whose task or optimizer is not installed in the API's process (a plugin only
  the workers have): 409 naming what is missing and how to install it.
* A database that cannot be reached: 503. Anything else: 500 "Internal server error", with
  the traceback in the server log only.
"""

from __future__ import annotations

import logging
from typing import Any

from boundsweep.optimizers import NotInstalledError
from boundsweep.service.api.body_limit import too_large_detail
from boundsweep.service.specs import SpecError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["DATABASE_UNAVAILABLE", "install_error_handlers"]

DATABASE_UNAVAILABLE = "Database unavailable; retry later"
"""The 503 detail of every request that finds the database down (the dashboard's too)."""

logger = logging.getLogger("boundsweep.service.api")


def _validation_items(errors: Any) -> list[dict[str, Any]]:
    items = []
    for err in errors:
        # Pydantic prefixes a validator's own message with "Value error, "; the message is
        # already a sentence about the field.
        message = err.get("msg", "invalid value").removeprefix("Value error, ")
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "")
            message = f"Malformed JSON: {reason}" if reason else "Malformed JSON"
        items.append({"loc": list(err.get("loc", ())), "msg": message, "type": err.get("type")})
    return items


async def _request_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": _validation_items(exc.errors())})


async def _not_installed(_: Request, exc: NotInstalledError) -> JSONResponse:
    return JSONResponse(status_code=409, content={"detail": str(exc)})


async def _spec_error(_: Request, exc: SpecError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": exc.errors})


def _http_exception_handler(max_body_bytes: int):
    async def handle(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if exc.status_code == 413:
            detail = too_large_detail(max_body_bytes)
        return JSONResponse(
            status_code=exc.status_code, content={"detail": detail}, headers=exc.headers
        )

    return handle


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if (
        isinstance(exc, DBAPIError)
        and not exc.connection_invalidated
        and not isinstance(exc, OperationalError)
    ):
        return await _internal_error(request, exc)
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(status_code=503, content={"detail": DATABASE_UNAVAILABLE})


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(status_code=500, content={"detail": "Internal server error"})


def install_error_handlers(app: FastAPI, max_body_bytes: int) -> None:
    """Register the handlers above on `app`."""
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(NotInstalledError, _not_installed)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler(max_body_bytes))
    app.add_exception_handler(DBAPIError, _database_unavailable)
    app.add_exception_handler(Exception, _internal_error)
