"""Load test: N concurrent clients ask questions for T seconds against a running server.

    python scripts/load.py --url http://127.0.0.1:8000 --clients 16 --seconds 60

Reports requests/s, latency percentiles, errors (any non-200 or transport failure) and
the server's resident memory at start and end (found by --pid, or by the process that
listens on the URL's port). Exits 1 if any request failed. --json prints the figures
as one JSON object instead of the text report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil

QUESTIONS = Path(__file__).resolve().parent / "questions" / "seeds.jsonl"
FALLBACK = [
    "When did the protests in Iran begin?",
    "What did Russia say about the protests?",
    "How many people live in Iran?",
    "Who is the capital of the moon?",
]


def load_questions(path: Path | None) -> list[str]:
    path = path or QUESTIONS
    if not path.is_file():
        return FALLBACK
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            questions.append(row["question"] if isinstance(row, dict) else str(row))
    return questions or FALLBACK


def server_process(url: str, pid: int | None) -> psutil.Process | None:
    if pid:
        return psutil.Process(pid)
    port = urlparse(url).port or 80
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return None
    for c in connections:
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            return psutil.Process(c.pid)
    return None


def rss_mib(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        return round(process.memory_info().rss / 2**20, 1)
    except psutil.Error:
        return None


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


async def client(
    http: httpx.AsyncClient,
    questions: list[str],
    offset: int,
    deadline: float,
    latencies: list[float],
    errors: Counter,
    headers: dict[str, str],
) -> None:
    i = offset
    while time.monotonic() < deadline:
        body = {"question": questions[i % len(questions)], "top_k": 5}
        i += 1
        started = time.perf_counter()
        try:
            r = await http.post("/ask", json=body, headers=headers)
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            continue
        elapsed = time.perf_counter() - started
        if r.status_code == 200:
            latencies.append(elapsed)
        else:
            errors[f"HTTP {r.status_code}"] += 1


async def run(args: argparse.Namespace) -> dict:
    questions = load_questions(args.questions)
    process = server_process(args.url, args.pid)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    latencies: list[float] = []
    errors: Counter = Counter()
    async with httpx.AsyncClient(base_url=args.url, timeout=args.timeout, limits=limits) as http:
        health = (await http.get("/health")).json()
        rss_start = rss_mib(process)
        started = time.monotonic()
        deadline = started + args.seconds
        await asyncio.gather(
            *(
                client(http, questions, n * 7, deadline, latencies, errors, headers)
                for n in range(args.clients)
            )
        )
        wall = time.monotonic() - started
    rss_end = rss_mib(process)
    ordered = sorted(latencies)
    ms = 1000
    return {
        "url": args.url,
        "clients": args.clients,
        "seconds": round(wall, 1),
        "build_id": health.get("build_id"),
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "requests_per_s": round(len(latencies) / wall, 2) if wall else 0.0,
        "latency_ms": {
            "mean": round(statistics.fmean(ordered) * ms, 1) if ordered else None,
            "p50": round(percentile(ordered, 50) * ms, 1),
            "p95": round(percentile(ordered, 95) * ms, 1),
            "p99": round(percentile(ordered, 99) * ms, 1),
            "max": round(ordered[-1] * ms, 1) if ordered else None,
        },
        "server_pid": process.pid if process else None,
        "rss_mib_start": rss_start,
        "rss_mib_end": rss_end,
        "rss_mib_growth": (
            round(rss_end - rss_start, 1) if rss_start is not None and rss_end is not None else None
        ),
    }


def report(figures: dict) -> str:
    lat = figures["latency_ms"]
    lines = [
        f"{figures['clients']} clients for {figures['seconds']} s against {figures['url']}",
        f"requests   {figures['requests']} ({figures['ok']} ok, {figures['errors']} errors)"
        + (f" {figures['error_kinds']}" if figures["errors"] else ""),
        f"throughput {figures['requests_per_s']} requests/s",
        f"latency    p50 {lat['p50']} ms, p95 {lat['p95']} ms, p99 {lat['p99']} ms, "
        f"max {lat['max']} ms",
    ]
    if figures["rss_mib_start"] is not None:
        lines.append(
            f"server RSS {figures['rss_mib_start']} MiB at start, {figures['rss_mib_end']} MiB "
            f"at end ({figures['rss_mib_growth']:+} MiB), pid {figures['server_pid']}"
        )
    else:
        lines.append("server RSS unknown (pass --pid, or run where the server's port is visible)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--pid", type=int, help="server process id, for its memory")
    parser.add_argument(
        "--questions", type=Path, help=f"JSONL with 'question' (default {QUESTIONS.name})"
    )
    parser.add_argument("--api-key", help="bearer token, when the server has RAG_API_KEY")
    parser.add_argument("--timeout", type=float, default=60, help="per request, seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients must be >= 1 and --seconds > 0")
    try:
        figures = asyncio.run(run(args))
    except httpx.HTTPError as exc:
        print(f"error: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
