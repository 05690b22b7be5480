"""Start-up: `python -m rag serve` process start to the first answered POST /ask, and
the server's RSS at rest after twenty answers."""

from __future__ import annotations

import json
import time

from scripts.benchmarks.context import QUIET, Context
from scripts.benchmarks.measure import rss_mb
from scripts.benchmarks.report import Row
from scripts.harness import SERVE, start


def run(ctx: Context) -> dict:
    import httpx

    index = ctx.index
    questions = ctx.questions()

    def answers(url: str) -> bool:
        response = httpx.post(f"{url}/ask", json={"question": questions[0]}, timeout=30)
        return response.status_code == 200

    server = start(index, ctx.work / "server-startup.log", args=QUIET)  # plain `rag serve`
    try:
        first_answer = server.wait_until(answers, timeout=180, interval=0.02)
        with httpx.Client(base_url=server.url) as client:
            for q in questions[:20]:
                client.post("/ask", json={"question": q})
        time.sleep(1.0)
        rest = rss_mb(server.process.pid)
    finally:
        server.stop()
    return {
        "command": " ".join(["python", *SERVE, "--index", "<index>"]),
        "to_first_answer_s": round(first_answer, 3),
        "rss_at_rest_mb": rest,
        "index_chunks": json.loads((index / "manifest.json").read_text())["counts"]["chunks"],
    }


def rows(r: dict) -> list[Row]:
    return [
        (
            "process start -> first answer",
            f"{r['to_first_answer_s']:.2f} s",
            f"RSS at rest {r['rss_at_rest_mb']:.0f} MB",
            "",
        )
    ]
