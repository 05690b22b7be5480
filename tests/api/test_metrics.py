"""GET /metrics on a real server after real requests: every counter read with
prometheus_client's parser and compared with what was sent, exactly."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.scrape import parse, value
from tests.servers import serve

pytestmark = pytest.mark.slow

# Seconds a server may take to start: the model loads in a few, but far slower on a
# machine busy with other work.
STARTUP = 300

KEY = "metrics-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
SEEDS_SET = Path(__file__).parents[2] / "scripts" / "questions" / "seeds.jsonl"
# The first 12 questions of the seeds set, whatever they are, and two it cannot answer.
QUESTIONS = [json.loads(line)["question"] for line in SEEDS_SET.open()][:12]
UNANSWERABLE = [
    "Who won the 2018 FIFA World Cup?",
    "How long should you boil an egg to get a runny yolk?",
]


def test_metrics_count_exactly_what_was_sent(seed_index_dir: Path, tmp_path: Path) -> None:
    env = {"RAG_API_KEY": KEY, "RAG_RELOAD_INTERVAL": "0"}
    with (
        serve(seed_index_dir, tmp_path, env=env, timeout=STARTUP) as server,
        httpx.Client(base_url=server.url, timeout=60) as c,
    ):
        # /metrics, /ready and /health are open, as /health has always been.
        for path in ("/metrics", "/ready", "/health"):
            assert c.get(path).status_code == 200, path
        before = parse(c.get("/metrics").text)
        health = c.get("/health").json()

        asked = QUESTIONS + UNANSWERABLE
        # Concurrently, so that the micro-batcher has something to batch.
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda q: httpx.post(
                        f"{server.url}/ask", json={"question": q}, headers=AUTH, timeout=60
                    ),
                    asked,
                )
            )
        assert [r.status_code for r in answers] == [200] * len(asked)
        nulls = sum(r.json()["answer"] is None for r in answers)
        assert nulls >= 1  # the unanswerable ones; the counters must say the same

        sent_errors = [
            (c.post("/ask", json={"question": "   "}, headers=AUTH), 422, "invalid_question"),
            (c.post("/ask", json={"question": ""}, headers=AUTH), 422, "invalid_question"),
            (
                c.post("/ask", json={"question": "x", "top_k": 50}, headers=AUTH),
                422,
                "invalid_request",
            ),
            (
                c.post(
                    "/ask",
                    content=b"{not json",
                    headers={**AUTH, "Content-Type": "application/json"},
                ),
                400,
                "invalid_json",
            ),
            (c.post("/ask", json={"question": "Who?"}), 401, "unauthorized"),
            (c.get("/sources/nope.txt", headers=AUTH), 404, "source_not_found"),
            (c.get("/sources/nope.txt", headers=AUTH), 404, "source_not_found"),
            (c.delete("/ask"), 405, "method_not_allowed"),
        ]
        for response, status, code in sent_errors:
            assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        assert c.get("/sources", headers=AUTH).status_code == 200
        after = parse(c.get("/metrics").text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "rag_http_requests_total"
    assert delta(requests, route="/ask", method="POST", status="200") == len(asked)
    assert delta(requests, route="/ask", method="POST", status="422") == 3
    assert delta(requests, route="/ask", method="POST", status="400") == 1
    assert delta(requests, route="/ask", method="POST", status="401") == 1
    assert delta(requests, route="/ask", method="DELETE", status="405") == 1
    assert delta(requests, route="/sources/{name}", method="GET", status="404") == 2
    assert delta(requests, route="/sources", method="GET", status="200") == 1
    assert delta(requests, route="/health", method="GET", status="200") == 1
    # The scrape that took `before` was counted once it had been sent.
    assert delta(requests, route="/metrics", method="GET", status="200") == 1
    assert (
        delta("rag_http_request_duration_seconds_count", route="/ask", method="POST")
        == len(asked) + 3 + 1 + 1
    )

    errors = "rag_errors_total"
    assert delta(errors, code="invalid_question", status="422") == 2
    assert delta(errors, code="invalid_request", status="422") == 1
    assert delta(errors, code="invalid_json", status="400") == 1
    assert delta(errors, code="unauthorized", status="401") == 1
    assert delta(errors, code="source_not_found", status="404") == 2
    assert delta(errors, code="method_not_allowed", status="405") == 1
    assert sum(after[errors].values()) - sum(before.get(errors, {}).values()) == len(sent_errors)

    assert delta("rag_answers_total", outcome="null") == nulls
    assert delta("rag_answers_total", outcome="answered") == len(asked) - nulls

    # Every answered question passed through each stage once; the stages are parts of
    # the total, one after the other.
    stage_sum = {}
    for stage in ("queue", "model", "ranking", "total"):
        assert delta("rag_ask_duration_seconds_count", stage=stage) == len(asked), stage
        stage_sum[stage] = delta("rag_ask_duration_seconds_sum", stage=stage)
        assert stage_sum[stage] >= 0
    assert stage_sum["model"] > 0 and stage_sum["ranking"] > 0
    assert stage_sum["queue"] + stage_sum["model"] + stage_sum["ranking"] <= stage_sum["total"]

    # Each question was in exactly one batch.
    assert delta("rag_batch_size_sum") == len(asked)
    assert 1 <= delta("rag_batch_size_count") <= len(asked)
    assert value(after, "rag_queue_depth") == 0
    assert value(after, "rag_questions_in_flight") == 0

    info = after["rag_index_info"]
    assert list(info) == [
        tuple(
            sorted(
                {
                    "build_id": health["build_id"],
                    "built_at": health["built_at"],
                    "model": health["model"],
                    "backend": health["backend"],
                }.items()
            )
        )
    ]
    assert value(after, "rag_index_chunks") == health["counts"]["chunks"]
    assert value(after, "rag_index_documents") == health["counts"]["documents"]
    assert value(after, "rag_index_reloads_total", outcome="success") == 0
    assert value(after, "rag_index_reloads_total", outcome="failure") == 0
    assert value(after, "rag_ready") == 1
