"""The one place where domain errors become HTTP errors.

Every error response has the shape {"error": {"code": ..., "message": ...}}.
Tracebacks go to the server log, never to the client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.engine import OverloadedError
from rag.errors import InvalidQuestionError, RagError, SourceNotFoundError

log = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


_HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    400: "bad_request",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe(exc))

    @app.exception_handler(InvalidQuestionError)
    async def _question(_: Request, exc: InvalidQuestionError) -> JSONResponse:
        return error_response(422, "invalid_question", str(exc))

    @app.exception_handler(SourceNotFoundError)
    async def _source(_: Request, exc: SourceNotFoundError) -> JSONResponse:
        return error_response(404, "source_not_found", str(exc))

    @app.exception_handler(OverloadedError)
    async def _busy(_: Request, exc: OverloadedError) -> JSONResponse:
        return error_response(503, "overloaded", str(exc), {"Retry-After": "1"})

    @app.exception_handler(RagError)
    async def _rag(_: Request, exc: RagError) -> JSONResponse:
        log.error("request failed: %s", exc)
        return error_response(503, "index_unavailable", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "internal error; the server log has the details"
        )
