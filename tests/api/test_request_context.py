"""Request ids, the access log line and the request metrics, on a tiny app with the
server's own error handlers and middleware (no model, no index): exact expectations."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors
from api.observability import requests
from api.observability.logs import make_handler
from api.observability.metrics import Metrics
from rag.errors import SourceNotFoundError
from tests.api.scrape import parse, value

app_log = logging.getLogger("tests.api.tiny")


def tiny_app() -> tuple[FastAPI, Metrics]:
    app = FastAPI()
    errors.install(app)
    metrics = Metrics()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        app_log.info("looking up item %d", item_id)
        if item_id == 0:
            raise RuntimeError("boom: a bug")
        if item_id == 404:
            raise SourceNotFoundError(f"item-{item_id}")
        return {"id": item_id}

    requests.install(app, metrics)
    return app, metrics


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """Every log line of the process, as the server writes them in JSON."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_client_id_is_returned_and_on_every_line_of_its_request(logs: io.StringIO) -> None:
    app, _ = tiny_app()
    with TestClient(app) as client:
        r = client.get("/items/7", headers={"X-Request-ID": "client-id-1"})
        other = client.get("/items/8")
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "client-id-1"
    mine = [line for line in lines(logs) if line.get("request_id") == "client-id-1"]
    assert [line["logger"] for line in mine] == ["tests.api.tiny", "api.access"]
    assert mine[0]["message"] == "looking up item 7"
    assert re.fullmatch(r"GET /items/7 200 \d+\.\d ms", mine[1]["message"])
    access = mine[1]
    assert (access["method"], access["path"], access["route"], access["status"]) == (
        "GET",
        "/items/7",
        "/items/{item_id}",
        200,
    )
    assert access["duration_ms"] >= 0
    # The other request has its own, generated id, on its own lines.
    generated = other.headers["X-Request-ID"]
    assert len(generated) == 32 and generated != "client-id-1"
    theirs = [line["message"] for line in lines(logs) if line.get("request_id") == generated]
    assert theirs[0] == "looking up item 8"
    assert re.fullmatch(r"GET /items/8 200 \d+\.\d ms", theirs[1])


def test_an_unusable_client_id_is_replaced(logs: io.StringIO) -> None:
    app, _ = tiny_app()
    with TestClient(app) as client:
        r = client.get("/items/1", headers={"X-Request-ID": "x" * 200})
    assert len(r.headers["X-Request-ID"]) == 32
    assert r.headers.get_list("X-Request-ID") == [r.headers["X-Request-ID"]]  # one, not two


def test_a_crash_is_a_500_without_traceback_and_a_logged_traceback_with_the_id(
    logs: io.StringIO,
) -> None:
    app, metrics = tiny_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/items/0", headers={"X-Request-ID": "crash-1"})
    assert r.status_code == 500
    assert r.headers["X-Request-ID"] == "crash-1"
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error; the server log has the details",
        }
    }
    assert "boom" not in r.text
    mine = [line for line in lines(logs) if line.get("request_id") == "crash-1"]
    assert [line["logger"] for line in mine] == ["tests.api.tiny", "api.errors", "api.access"]
    error = mine[1]
    assert error["level"] == "ERROR"
    assert error["message"] == "unexpected error on GET /items/0"
    assert error["exception"].endswith("RuntimeError: boom: a bug")
    access = mine[2]
    assert (access["level"], access["status"], access["error_code"]) == (
        "ERROR",
        500,
        "internal_error",
    )
    # Logged once: not a second time, without the id, by the server.
    assert sum("RuntimeError: boom" in line.get("exception", "") for line in lines(logs)) == 1
    samples = parse(metrics.exposition()[0].decode())
    assert value(samples, "rag_errors_total", code="internal_error", status="500") == 1


def test_requests_and_errors_are_counted_by_route_template_and_code() -> None:
    app, metrics = tiny_app()
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, times in [
            ("/items/1", 3),
            ("/items/2", 1),
            ("/items/404", 2),
            ("/items/0", 1),
            ("/items/x", 1),
            ("/nowhere", 2),
        ]:
            for _ in range(times):
                client.get(path)
        client.post("/items/1")
    s = parse(metrics.exposition()[0].decode())
    requests_total = s["rag_http_requests_total"]
    assert requests_total == {
        (("method", "GET"), ("route", "/items/{item_id}"), ("status", "200")): 4,
        (("method", "GET"), ("route", "/items/{item_id}"), ("status", "404")): 2,
        (("method", "GET"), ("route", "/items/{item_id}"), ("status", "500")): 1,
        (("method", "GET"), ("route", "/items/{item_id}"), ("status", "422")): 1,
        (("method", "GET"), ("route", "<unmatched>"), ("status", "404")): 2,
        (("method", "POST"), ("route", "/items/{item_id}"), ("status", "405")): 1,
    }
    assert s["rag_errors_total"] == {
        (("code", "source_not_found"), ("status", "404")): 2,
        (("code", "internal_error"), ("status", "500")): 1,
        (("code", "invalid_request"), ("status", "422")): 1,
        (("code", "not_found"), ("status", "404")): 2,
        (("code", "method_not_allowed"), ("status", "405")): 1,
    }
    assert (
        value(s, "rag_http_request_duration_seconds_count", method="GET", route="/items/{item_id}")
        == 8
    )


def test_each_app_has_its_own_registry() -> None:
    first, first_metrics = tiny_app()
    second, second_metrics = tiny_app()
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/items/1")
        a.get("/items/1")
        b.get("/items/1")
    labels = {"method": "GET", "route": "/items/{item_id}", "status": "200"}
    for metrics, expected in [(first_metrics, 2), (second_metrics, 1)]:
        samples = parse(metrics.exposition()[0].decode())
        assert value(samples, "rag_http_requests_total", **labels) == expected
