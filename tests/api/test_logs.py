"""Log formatting and request ids: pure helpers, exact expected output."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from api.observability.context import accept_or_create, request_id
from api.observability.logs import JsonFormatter, TextFormatter, make_handler


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("api.test", logging.WARNING, __file__, 10, "hello %s", ("world",), None)
    rec.created = 1796000000.25  # 2026-11-30T00:53:20.250Z
    rec.__dict__.update(extra)
    return rec


def test_json_line_has_the_fixed_fields_the_request_id_and_the_extras_in_order() -> None:
    line = JsonFormatter().format(record(request_id="req-1", status=422, route="/ask"))
    assert json.loads(line) == {
        "ts": "2026-11-30T00:53:20.250Z",
        "level": "WARNING",
        "logger": "api.test",
        "message": "hello world",
        "request_id": "req-1",
        "status": 422,
        "route": "/ask",
    }
    assert "\n" not in line
    assert list(json.loads(line)) == [
        "ts", "level", "logger", "message", "request_id", "status", "route",
    ]  # fmt: skip


def test_json_line_outside_a_request_has_no_request_id() -> None:
    assert "request_id" not in json.loads(JsonFormatter().format(record(request_id="-")))


def test_json_line_carries_the_traceback_as_one_field() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        rec = record(request_id="req-2")
        rec.exc_info = sys.exc_info()
    line = JsonFormatter().format(rec)
    assert "\n" not in line  # one line, the traceback escaped inside it
    parsed = json.loads(line)
    assert parsed["exception"].startswith("Traceback (most recent call last):")
    assert parsed["exception"].endswith("ValueError: bad value")
    assert parsed["request_id"] == "req-2"


def test_json_writes_a_field_that_is_not_json_as_text() -> None:
    from pathlib import PurePosixPath

    line = JsonFormatter().format(record(where=PurePosixPath("/tmp/x")))
    assert json.loads(line)["where"] == "/tmp/x"


def test_text_line() -> None:
    rec = record(request_id="req-3", status=200, error_message="top_k: too big")
    assert TextFormatter().format(rec) == (
        "2026-11-30T00:53:20.250Z WARNING api.test [req req-3] hello world "
        'status=200 error_message="top_k: too big"'
    )


def test_handler_stamps_the_current_request_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("tests.api.stamp")
    logger.propagate = False
    logger.addHandler(make_handler("json", stream))
    try:
        token = request_id.set("abc-123")
        logger.warning("inside")
        request_id.reset(token)
        logger.warning("outside")
    finally:
        logger.handlers.clear()
        logger.propagate = True
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "abc-123"
    assert "request_id" not in outside


@pytest.mark.parametrize(
    "given",
    ["abc-123", "3f2a9c1e-9d4b-4c6e-8f00-0123456789ab", "svc.web:42/7+x=", "a" * 128],
)
def test_a_sane_client_id_is_kept(given: str) -> None:
    assert accept_or_create(given) == given


@pytest.mark.parametrize(
    "given",
    [None, "", "a" * 129, "has space", "new\nline", 'quote"', "-leading-dash", "é"],
)
def test_anything_else_gets_a_new_id(given: str | None) -> None:
    new = accept_or_create(given)
    assert new != given
    assert len(new) == 32 and int(new, 16) >= 0  # uuid4 hex
    assert accept_or_create(given) != new  # a new one each time
