"""Latency: POST /ask over real HTTP to a real server, one client, and in-process
QA.ask with its breakdown, each against the bare `SentenceTransformer.encode([q])`
interleaved with it in blocks."""

from __future__ import annotations

import argparse
import time

from scripts.benchmarks.context import Context
from scripts.benchmarks.measure import blocks, median, ms, pct, timed
from scripts.benchmarks.report import Row, ok

TARGET_RATIO = 1.5
# Options that make the section run in seconds (tests/scripts/test_bench_smoke.py).
SMOKE_ARGS = ("--rounds", "1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=3, help="latency passes over the questions")


def run(ctx: Context) -> dict:
    import httpx

    from rag.pipeline import QA

    questions = ctx.questions()
    bare = ctx.bare
    ctx.warm_up(questions)
    ref, http, errors = [], [], 0
    with (
        ctx.server("server-latency.log") as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        for q in questions[:20]:
            client.post("/ask", json={"question": q})
        for _ in range(ctx.args.rounds):
            for block in blocks(questions):  # interleaved, so both see the same load
                ref.extend(timed(lambda q=q: bare.encode([q])) for q in block)
                for q in block:
                    start = time.perf_counter()
                    response = client.post("/ask", json={"question": q})
                    http.append(time.perf_counter() - start)
                    errors += response.status_code != 200

    qa = QA.load(ctx.index, embedder=ctx.embedder)
    for q in questions[:20]:
        qa.ask(q)
    ref_in, ask, enc, retr, answer = [], [], [], [], []
    for _ in range(ctx.args.rounds):
        for block in blocks(questions):
            ref_in.extend(timed(lambda q=q: bare.encode([q])) for q in block)
            ask.extend(timed(lambda q=q: qa.ask(q)) for q in block)
            for q in block:
                e, r, a = _breakdown(qa, q)
                enc.append(e)
                retr.append(r)
                answer.append(a)

    reference = median(ref)
    out = {
        "questions": len(questions),
        "rounds": ctx.args.rounds,
        "reference_encode_ms": {"p50": ms(reference), "p95": ms(pct(ref, 95))},
        "http_ask_ms": {"p50": ms(median(http)), "p95": ms(pct(http, 95))},
        "http_errors": errors,
        "ratio_p50": round(median(http) / reference, 3),
        "target_ratio": TARGET_RATIO,
        "inprocess_reference_encode_ms": ms(median(ref_in)),
        "inprocess_ask_ms": {"p50": ms(median(ask)), "p95": ms(pct(ask, 95))},
        "inprocess_ratio_p50": round(median(ask) / median(ref_in), 3),
        "breakdown_p50_ms": {
            "encode (QA.encode)": ms(median(enc)),
            "retrieve": ms(median(retr)),
            "answer (extract + citations)": ms(median(answer)),
            "http + server overhead": ms(median(http) - median(ask)),
        },
    }
    out["met"] = out["ratio_p50"] <= TARGET_RATIO and errors == 0
    return out


def _breakdown(qa, q: str) -> tuple[float, float, float]:
    """Seconds of QA's public steps for one question: encode, retrieve, and the rest of
    answer (QA.answer retrieves again, so its time less the retrieval's); top_k is
    POST /ask's default."""
    from rag.request import TOP_K_DEFAULT

    t0 = time.perf_counter()
    encoded = qa.encode([q])[0]
    t1 = time.perf_counter()
    qa.retrieve(q, TOP_K_DEFAULT, encoded=encoded)
    t2 = time.perf_counter()
    qa.answer(q, encoded)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, max(0.0, (t3 - t2) - (t2 - t1))


def rows(r: dict) -> list[Row]:
    out: list[Row] = [
        (
            "POST /ask p50 / p95 (1 client)",
            f"{r['http_ask_ms']['p50']:.2f} / {r['http_ask_ms']['p95']:.2f} ms",
            f"bare encode p50 {r['reference_encode_ms']['p50']:.2f} ms",
            f"ratio {r['ratio_p50']:.2f} (<= {TARGET_RATIO}) {ok(r['met'])}",
        ),
        (
            "in-process QA.ask p50",
            f"{r['inprocess_ask_ms']['p50']:.2f} ms",
            f"{r['inprocess_reference_encode_ms']:.2f} ms",
            f"ratio {r['inprocess_ratio_p50']:.2f}",
        ),
    ]
    out += [(f"  {name}", f"{v:.2f} ms", "", "") for name, v in r["breakdown_p50_ms"].items()]
    return out
