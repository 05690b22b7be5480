"""A short run of scripts/load.py against a real server: zero errors, sane figures; and
under concurrent HTTP load every answer is the one the same question gets alone."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading

import httpx
import pytest

from tests.servers import ROOT, Server

pytestmark = pytest.mark.slow

SHORT_RUN = ["--clients", "4", "--seconds", "5", "--json"]


def test_short_load_run_has_no_errors(live_server: Server) -> None:
    pid = ["--pid", str(live_server.process.pid)]
    proc = subprocess.run(
        [sys.executable, "scripts/load.py", "--url", live_server.url, *SHORT_RUN, *pid],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["errors"] == 0, figures
    assert figures["ok"] > 0
    assert figures["requests_per_s"] > 0
    lat = figures["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert figures["rss_mib_start"] > 0
    assert figures["rss_mib_end"] > 0
    assert "Traceback" not in live_server.log()


def test_load_script_reports_an_unreachable_server(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/load.py", "--url", "http://127.0.0.1:9", "--seconds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "cannot reach" in proc.stderr


def test_answers_under_concurrent_load_equal_answers_asked_alone(live_server: Server) -> None:
    """Concurrent requests share forward passes (micro-batching) and overlap ranking with
    encoding; none of that may change an answer, its citations, scores or confidence."""
    rows = [json.loads(line) for line in (ROOT / "scripts/questions/seeds.jsonl").open()]
    questions = [r["question"] for r in rows[:: max(1, len(rows) // 16)]][:16]
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        before = _batches(c)
        alone = {}
        for q in questions:
            r = c.post("/ask", json={"question": q, "top_k": 5})
            assert r.status_code == 200, r.text
            alone[q] = r.json()

    seen: list[tuple[str, int, dict | str]] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        order = questions * 2
        random.Random(seed).shuffle(order)
        with httpx.Client(base_url=live_server.url, timeout=120) as c:
            for q in order:
                r = c.post("/ask", json={"question": q, "top_k": 5})
                with lock:
                    seen.append((q, r.status_code, r.json() if r.status_code == 200 else r.text))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert len(seen) == 8 * 2 * len(questions)
    # The load did share forward passes: fewer batches than questions.
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        batches, asked = (a - b for a, b in zip(_batches(c), before, strict=True))
    assert asked == len(seen) + len(questions) and batches < asked, (batches, asked)
    assert [s for s in seen if s[1] != 200] == []
    different = [q for q, _, body in seen if body != alone[q]]
    assert different == [], different[:3]


def _batches(c: httpx.Client) -> tuple[float, float]:
    """(forward passes, questions in them) so far, from the server's /metrics."""
    text = c.get("/metrics").text
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("rag_batch_size_count", "rag_batch_size_sum"):
            values[name] = float(value)
    return values["rag_batch_size_count"], values["rag_batch_size_sum"]
