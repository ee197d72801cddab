"""Map every error to ``{"error": kind, "detail": what and why}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from aami.api.health import database_error
from aami.common.messages import validation_message
from aami.errors import AamiError

__all__ = ["install_error_handlers"]

log = logging.getLogger(__name__)

_HTTP_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid",
}


def _body(kind: str, detail: str) -> dict[str, str]:
    return {"error": kind, "detail": detail}


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) if parts else "body"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(AamiError)
    async def _aami(_: Request, exc: AamiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(_body(exc.kind, exc.detail), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = []
        for error in exc.errors():
            message = validation_message(error)
            messages.append(f"{_location(tuple(error.get('loc', ())))}: {message}")
        return JSONResponse(_body("invalid", "; ".join(messages)), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_KINDS.get(exc.status_code, "error")
        return JSONResponse(_body(kind, str(exc.detail)), exc.status_code, headers=exc.headers)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # A race between two writers past the service's own checks.
        log.info("integrity error: %s", exc.orig)
        return JSONResponse(
            _body("conflict", "the change conflicts with data written at the same time; retry"),
            409,
        )

    @app.exception_handler(SQLAlchemyTimeoutError)
    async def _pool_timeout(_: Request, exc: SQLAlchemyTimeoutError) -> JSONResponse:
        log.warning("database connection pool exhausted: %s", exc)
        return JSONResponse(
            _body("unavailable", "the database is busy: no connection was free; retry"),
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(OperationalError)
    async def _database(_: Request, exc: OperationalError) -> JSONResponse:
        # A full disk, a read-only file, a lost connection: the request changed nothing.
        reason = database_error(exc)
        log.warning("database error: %s", reason)
        return JSONResponse(
            _body("unavailable", f"the database cannot serve this request: {reason}"),
            503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(_body("internal_error", "internal error; see the server log"), 500)
