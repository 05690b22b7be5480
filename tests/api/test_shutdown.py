"""SIGTERM to a real server under load: it stops accepting connections, answers every
request it had accepted, and exits 0."""

from __future__ import annotations

import json
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import serve

pytestmark = pytest.mark.slow

# Seconds a server may take to start: the model loads in a few, but far slower on a
# machine busy with other work.
STARTUP = 300

QUESTIONS = [
    "Who is Nikita Smagin?",
    "When did the protests in Iran begin?",
    "What did Russia's Foreign Ministry say about the protests?",
    "Who won the 2018 FIFA World Cup?",
]


@dataclass
class Outcome:
    request_id: str
    sent: float  # time.monotonic()
    done: float
    status: int | None  # None: no HTTP response
    error: str | None  # the transport error's class name


def client(url: str, number: int, stop: threading.Event, out: list[Outcome]) -> None:
    """Ask on a new connection each time (so a request never rides a keep-alive
    connection the server is closing), with an id of our own on each request."""
    n = 0
    while not stop.is_set():
        rid = f"c{number}-{n}"
        n += 1
        sent = time.monotonic()
        try:
            r = httpx.post(
                f"{url}/ask",
                json={"question": QUESTIONS[n % len(QUESTIONS)]},
                headers={"X-Request-ID": rid},
                timeout=30,
            )
            out.append(Outcome(rid, sent, time.monotonic(), r.status_code, None))
        except httpx.TransportError as exc:
            out.append(Outcome(rid, sent, time.monotonic(), None, type(exc).__name__))
            time.sleep(0.01)


def _questions_in_flight(probe: httpx.Client) -> bool:
    """Whether the server's /metrics shows a question accepted and not yet answered."""
    for family in text_string_to_metric_families(probe.get("/metrics").text):
        if family.name == "rag_questions_in_flight":
            return any(sample.value > 0 for sample in family.samples)
    raise AssertionError("/metrics lacks rag_questions_in_flight")


def test_sigterm_under_load_loses_no_accepted_request(seed_index_dir: Path, tmp_path: Path) -> None:
    env = {"RAG_LOG_FORMAT": "json", "RAG_RELOAD_INTERVAL": "0", "RAG_SHUTDOWN_TIMEOUT": "20"}
    outcomes: list[Outcome] = []
    stop = threading.Event()
    with serve(seed_index_dir, tmp_path, env=env, timeout=STARTUP) as server:
        threads = [
            threading.Thread(target=client, args=(server.url, i, stop, outcomes)) for i in range(8)
        ]
        for t in threads:
            t.start()
        # Under load: wait for 20 answers (a few seconds; longer on a busy machine).
        deadline = time.monotonic() + 120
        while sum(o.status == 200 for o in outcomes) < 20:
            assert time.monotonic() < deadline, outcomes[-5:]
            time.sleep(0.1)
        answered_before = sum(o.status == 200 for o in outcomes)
        # Signal while the app holds a question, so that the test sees requests in
        # flight answered after the signal (timing alone missed it on a busy machine).
        with httpx.Client(base_url=server.url, timeout=10) as probe:
            while not _questions_in_flight(probe):
                assert time.monotonic() < deadline, "no question was ever in flight"
        sigterm = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        code = server.process.wait(60)
        exited = time.monotonic()
        time.sleep(0.5)  # the clients now meet a closed port
        stop.set()
        for t in threads:
            t.join(60)
        lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]

    assert code == 0, server.log()[-3000:]
    # Bounded: the requests in flight get RAG_SHUTDOWN_TIMEOUT (20 s) at most; the rest
    # (the engine's stop, the exit) takes well under a second on an idle machine.
    assert exited - sigterm < 20 + 10
    assert answered_before >= 20  # it really was under load

    # What the server handled, by the id each client sent: the access log has a line for
    # every request the app took in, written just before its response was sent.
    handled = {
        line["request_id"]: line
        for line in lines
        if line.get("logger") == "api.access" and line.get("path") == "/ask"
    }
    by_id = {o.request_id: o for o in outcomes}
    for rid, line in handled.items():
        assert line["status"] == 200, line
        assert by_id[rid].status == 200, (rid, by_id[rid])  # the client got it

    # Every request either got its 200, or never got in (refused, or reset before the
    # app read it: a connection still in the listen queue when the socket closed).
    for o in outcomes:
        if o.status is not None:
            assert o.status == 200, o
        else:
            assert o.request_id not in handled, o
            assert o.done >= sigterm, o  # no failure at all before the signal
    # Some requests were in flight when the signal came and were answered after it...
    spanning = [o for o in outcomes if o.sent < sigterm < o.done and o.status == 200]
    assert spanning, "no request was in flight at SIGTERM"
    # ...and afterwards the port was closed.
    refused = [o for o in outcomes if o.error == "ConnectError" and o.sent > exited]
    assert refused
    errors = sorted({o.error for o in outcomes if o.error})
    print(
        f"{sum(o.status == 200 for o in outcomes)} answered, {len(spanning)} across SIGTERM, "
        f"{sum(o.error is not None for o in outcomes)} not accepted ({errors}), "
        f"exit {code} {exited - sigterm:.2f}s after SIGTERM"
    )
    messages = [line["message"] for line in lines]
    assert "Shutting down" in messages
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")], messages
    assert "Traceback" not in server.log()
