"""The id of the request being handled, visible to every log call made on its behalf.

A contextvar rather than an argument: the id has to reach log lines written deep in the
library and in FastAPI's exception handlers, which never see the request. Each request
runs in its own task, which starts with a copy of the context, so ids never leak from
one request to another.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

HEADER = "X-Request-ID"

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What a client may send as its own id: enough for UUIDs, trace ids and the usual
# "<service>-<counter>" forms, nothing that could break a log line or a header.
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")


def accept_or_create(given: str | None) -> str:
    """The client's id when it is a sane token (1-128 characters of letters, digits and
    `._:/+=-`), otherwise a new random one: an id is always logged and always returned."""
    if given is not None and _VALID.fullmatch(given):
        return given
    return uuid.uuid4().hex


# Facts about the request gathered while it is handled (the answer's outcome, the time
# each stage took, the error code), written as fields of its access log line.
request_fields: ContextVar[dict[str, object] | None] = ContextVar("request_fields", default=None)


def annotate(**fields: object) -> None:
    """Add fields to the current request's access log line (no-op outside a request)."""
    current = request_fields.get()
    if current is not None:
        current.update(fields)
