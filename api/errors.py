"""The one place where domain errors become HTTP errors.

Every error response has the shape {"error": {"code": ..., "message": ...}}.
Tracebacks go to the server log, never to the client.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.engine import OverloadedError
from rag.errors import InvalidQuestionError, RagError, SourceNotFoundError, UnknownSourceError

log = logging.getLogger(__name__)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


_EXAMPLE = '{"question": "..."}'


def _is_json(content_type: str | None) -> bool:
    """The rule FastAPI applies: application/json or application/<anything>+json."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _field_message(loc: str, err: dict) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return f"{loc} is required"
    if kind == "extra_forbidden":
        return f"unknown field {loc!r}; only 'question', 'top_k' and 'sources' are accepted"
    message = f"{loc}: {err.get('msg', 'invalid').removeprefix('Value error, ')}"
    given = err.get("input")
    if "input" in err and not isinstance(given, dict):
        shown = json.dumps(given, ensure_ascii=False, default=repr)
        if len(shown) > 80:
            shown = shown[:80] + "..."
        message += f", got {_JSON_TYPES.get(type(given), type(given).__name__)} {shown}"
    return message


_JSON_TYPES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
}


def classify(request: Request, exc: RequestValidationError) -> tuple[int, str, str]:
    """Status, code and a message a person can act on, for a request that failed validation.

    400: the body could not be read as JSON at all (syntax, content type).
    422: it was JSON, but not the object the route expects.
    """
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            where = err.get("loc", ("body", "?"))[-1]
            reason = (err.get("ctx") or {}).get("error", "syntax error")
            return 400, "invalid_json", f"request body is not valid JSON: {reason} at char {where}"
    body_errors = [e for e in errors if tuple(e.get("loc", ())) == ("body",)]
    if body_errors:
        content_type = request.headers.get("content-type")
        if body_errors[0].get("type") == "missing":
            return (
                422,
                "invalid_request",
                f"request body is missing: send a JSON object like {_EXAMPLE}",
            )
        if not _is_json(content_type):
            got = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
            return (
                400,
                "unsupported_media_type",
                f"request body must be JSON sent with Content-Type: application/json (got {got})",
            )
        given = body_errors[0].get("input")
        got = "a JSON " + _JSON_TYPES.get(type(given), type(given).__name__)
        return (
            422,
            "invalid_request",
            f"request body must be a JSON object like {_EXAMPLE}, got {got}",
        )
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(_field_message(loc, err))
    return 422, "invalid_request", "; ".join(parts) or "invalid request"


_HTTP_CODES = {
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    415: "unsupported_media_type",
    400: "bad_request",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(*classify(request, exc))

    # The library's messages say what is wrong in its own terms; the HTTP layer adds
    # where to look over HTTP.
    @app.exception_handler(InvalidQuestionError)
    async def _question(_: Request, exc: InvalidQuestionError) -> JSONResponse:
        message = str(exc)
        if isinstance(exc, UnknownSourceError):
            message += "; GET /sources lists them"
        return error_response(422, "invalid_question", message)

    @app.exception_handler(SourceNotFoundError)
    async def _source(_: Request, exc: SourceNotFoundError) -> JSONResponse:
        return error_response(404, "source_not_found", f"{exc}; GET /sources lists them")

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
        message = str(exc.detail)
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):  # FastAPI's "error parsing the body"
            code = "invalid_json"
            message = f"request body is not valid UTF-8: byte offset {cause.start} ({cause.reason})"
        elif exc.status_code == 400 and cause is not None:
            message = f"request body cannot be parsed as JSON ({type(cause).__name__})"
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "internal error; the server log has the details"
        )
