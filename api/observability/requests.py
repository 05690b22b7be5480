"""The outermost layer of the app (pure ASGI): gives each request its id, returns it in
`X-Request-ID`, counts and times the request by route template, and writes one access
log line per request with its status, duration and, for an error, the error's code and
message taken from the response body.

Metrics and the log line are recorded just before the last byte of the response is
handed to the server, so a client that has read its response and then scrapes /metrics
always finds its request counted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability.context import HEADER, accept_or_create, request_fields, request_id
from api.observability.metrics import UNMATCHED, Metrics

log = logging.getLogger("api.access")

# Polled by load balancers and scrapers every few seconds: logged at DEBUG when they
# succeed, so the log is about questions rather than probes.
_PROBES = frozenset({"/health", "/ready", "/metrics"})
_ERROR_BODY_LIMIT = 64 * 1024
_HEADER_KEY = HEADER.lower().encode()


def route_template(scope: Scope, arrived: Scope) -> str:
    """The route's template (`/sources/{name:path}`), never the raw path, so the label
    takes a handful of values however many paths are asked for. FastAPI's own routes
    leave themselves in `scope["route"]`; others (the OpenAPI document, mounts such as
    the chat page) are found by matching the app's routes against the scope as it
    `arrived`."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)
    if path is not None:
        return path
    partial = None
    for candidate in getattr(arrived.get("app"), "routes", ()):
        match, _ = candidate.matches(arrived)
        if match is Match.FULL:
            return getattr(candidate, "path_format", None) or UNMATCHED
        if match is Match.PARTIAL and partial is None:
            partial = candidate
    return getattr(partial, "path_format", None) or UNMATCHED


def error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of a standard error body; ("unknown", "") for anything else."""
    try:
        error = json.loads(body)["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "unknown", ""


class RequestContext:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next(
            (v.decode("latin-1") for k, v in scope.get("headers") or [] if k == _HEADER_KEY),
            None,
        )
        rid = accept_or_create(given)
        arrived = dict(scope)  # routing adds to `scope`; matching needs it as it came
        # Set, not reset afterwards: the request runs in a task of its own whose context
        # dies with it, and the error handlers that log after the route returns (in
        # Starlette's outer middleware) still need the id.
        request_id.set(rid)
        fields: dict[str, object] = {}
        request_fields.set(fields)
        started = time.perf_counter()
        status = 0
        error_body = bytearray()
        recorded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER_KEY]
                headers.append((_HEADER_KEY, rid.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                if status >= 400 and len(error_body) < _ERROR_BODY_LIMIT:
                    error_body.extend(message.get("body", b""))
                if not message.get("more_body", False) and not recorded:
                    recorded = True
                    self._record(scope, arrived, status, started, bytes(error_body), fields)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except asyncio.CancelledError:
            # The server gave up on it (shutdown timeout): say so, with the id, so an
            # accepted request never vanishes from the log.
            if not recorded:
                log.warning(
                    "request cancelled before its response was complete",
                    extra={"method": scope["method"], "path": scope["path"], "status": status},
                )
            raise
        except Exception:
            if recorded:
                # Starlette answered 500 and errors.py logged the traceback with this
                # request's id; re-raising would make the server log it a second time,
                # without the id.
                return
            log.exception(
                "request failed before its response was complete",
                extra={"method": scope["method"], "path": scope["path"], "status": status},
            )

    def _record(
        self,
        scope: Scope,
        arrived: Scope,
        status: int,
        started: float,
        body: bytes,
        fields: dict[str, object],
    ) -> None:
        seconds = time.perf_counter() - started
        route = route_template(scope, arrived)
        method = scope["method"]
        self.metrics.requests.labels(route, method, str(status)).inc()
        self.metrics.request_seconds.labels(route, method).observe(seconds)
        extra: dict[str, object] = {
            "method": method,
            "path": scope["path"],
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        }
        if status >= 400:
            code, message = error_of(body)
            self.metrics.errors.labels(code, str(status)).inc()
            extra["error_code"] = code
            extra["error_message"] = message
        extra.update(fields)
        level = logging.INFO
        if status >= 500:
            level = logging.ERROR
        elif status >= 400:
            level = logging.WARNING
        elif route in _PROBES:
            level = logging.DEBUG
        log.log(
            level,
            "%s %s %d %.1f ms",
            method,
            scope["path"],
            status,
            seconds * 1000,
            extra=extra,
        )


def install(app: FastAPI, metrics: Metrics) -> None:
    """Put RequestContext outside Starlette's ServerErrorMiddleware, which `add_middleware`
    cannot do: the 500 that middleware sends must carry the request id too, be counted,
    and its traceback be logged with the id."""
    build = app.build_middleware_stack

    def build_with_context() -> ASGIApp:
        return RequestContext(build(), metrics)

    app.build_middleware_stack = build_with_context  # type: ignore[method-assign]
