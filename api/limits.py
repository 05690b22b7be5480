"""Request body limits, enforced while the body streams in (pure ASGI): a size limit
(413) and a time limit for the body to arrive (408), so a slow or endless upload can
neither fill memory nor hold a connection forever."""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _TooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body parsing re-raises it as a 413."""


class _TooSlow(HTTPException):
    """Raised when the rest of the body does not arrive within the time limit (408)."""


class BodySizeLimit:
    """Reject bodies over `max_bytes` with 413, from Content-Length when given, else by
    counting streamed bytes, so an oversized body is never read whole."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Seconds allowed for each piece of the body; None waits forever.
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                await _reply(send, 400, "bad_request", "Content-Length is not a number")
                return
            if too_big:
                await _reply(send, 413, "too_large", self._message())
                return

        seen = 0
        started = False
        body_done = False

        async def limited_receive() -> Message:
            nonlocal seen, body_done
            if body_done or self.timeout is None:
                # After the body only a disconnect can come; never time that wait out.
                message = await receive()
            else:
                try:
                    message = await asyncio.wait_for(receive(), self.timeout)
                except TimeoutError:
                    raise _TooSlow(
                        408, f"request body did not arrive within {self.timeout:g} seconds"
                    ) from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, self._message())
                body_done = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, "too_large", self._message())
        except _TooSlow as exc:
            if not started:
                await _reply(send, 408, "timeout", str(exc.detail))

    def _message(self) -> str:
        return f"request body is larger than {self.max_bytes} bytes"


async def _reply(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
