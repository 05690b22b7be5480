"""Throughput: 1, 4, 16 concurrent httpx.AsyncClient clients against a real server
(req/s, p50, p95, errors, CPU per request, the micro-batcher's batch sizes), the CPU
ceiling (cores / CPU per request), and what one shared forward pass saves per question."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import resource
import time
from collections import Counter
from pathlib import Path

from scripts.benchmarks.context import Context
from scripts.benchmarks.measure import log, median, ms, pct
from scripts.benchmarks.report import Row, ok

TARGET_SPEEDUP = 2.5
# Options that make the section run in seconds (tests/scripts/test_bench_smoke.py).
SMOKE_ARGS = ("--clients", "1,2", "--requests", "12")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--clients", default="1,4,16", type=lambda s: [int(x) for x in s.split(",")]
    )
    parser.add_argument("--requests", type=int, default=800, help="requests per client level")


def batch_sizes(log_path: Path, start: int) -> Counter[int]:
    """Batch sizes the server's micro-batcher logged after byte `start` (one "answered a
    batch of N" line per forward pass: scripts/bench_serve.py turns that log on)."""
    with log_path.open("rb") as fh:
        fh.seek(start)
        text = fh.read().decode(errors="replace")
    return Counter(int(n) for n in re.findall(r"answered a batch of (\d+)", text))


async def _load(url: str, questions: list[str], clients: int, total: int) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker(w: int) -> None:
            nonlocal errors
            for i in counter:
                q = questions[(i * 7 + w) % len(questions)]
                start = time.perf_counter()
                try:
                    response = await client.post("/ask", json={"question": q})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok

        # warm the connections so the measurement does not include their set-up
        await asyncio.gather(*(client.get("/health") for _ in range(clients)))
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return {
        "clients": clients,
        "requests": total,
        "seconds": round(elapsed, 3),
        "rps": round(total / elapsed, 1),
        "p50_ms": ms(median(latencies)),
        "p95_ms": ms(pct(latencies, 95)),
        "errors": errors,
        # The load generator runs on the same two cores as the server.
        "client_cpu_ms_per_request": round(client_cpu * 1000 / total, 2),
    }


def _sharing(ctx: Context, questions: list[str], size: int, rounds: int = 5) -> dict:
    """What one forward pass shared by `size` questions saves, per question, against one
    pass each: for the bare SentenceTransformer (the issue's premise: 7.6 ms alone, 2.5 ms
    at batch 16) and for the server's question encoder. CPU time is the process's, all
    threads included: at 16 clients the cores are full, so CPU per question is what
    bounds throughput. Random batches, as clients send them (lengths mixed, so padded)."""
    rng = random.Random(0)
    batches = [rng.sample(questions, min(size, len(questions))) for _ in range(8)]
    singles = [q for batch in batches[:2] for q in batch]
    encoders = {
        "bare": lambda qs: ctx.bare.encode(qs, batch_size=len(qs)),
        "server": ctx.embedder.encode_questions,
    }
    for encode in encoders.values():
        encode(singles[:4])  # warm-up, and the ONNX export on first use
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {
        name: {"alone": [], "shared": []} for name in encoders
    }
    for _ in range(rounds):  # interleaved, so both encoders see the same machine load
        for name, encode in encoders.items():
            for mode, work in (("alone", [[q] for q in singles]), ("shared", batches)):
                n = sum(len(b) for b in work)
                wall0, cpu0 = time.perf_counter(), time.process_time()
                for batch in work:
                    encode(batch)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                samples[name][mode].append((wall * 1000 / n, cpu * 1000 / n))
    out: dict = {"batch_size": size}
    for name, modes in samples.items():
        row = {}
        for mode, values in modes.items():
            row[f"{mode}_wall_ms"] = round(median([w for w, _ in values]), 2)
            row[f"{mode}_cpu_ms"] = round(median([c for _, c in values]), 2)
        # the share of a question's CPU that sharing a forward pass saves
        row["cpu_saved"] = round(1 - row["shared_cpu_ms"] / row["alone_cpu_ms"], 3)
        out[name] = row
    return out


def run(ctx: Context) -> dict:
    import psutil

    questions = ctx.questions()
    levels = []
    with ctx.server("server-throughput.log") as server:
        proc = psutil.Process(server.process.pid)
        asyncio.run(_load(server.url, questions, 4, 40))  # warm-up
        for clients in ctx.args.clients:
            offset = server.log_size()
            cpu0 = proc.cpu_times()
            level = asyncio.run(_load(server.url, questions, clients, ctx.args.requests))
            cpu1 = proc.cpu_times()
            time.sleep(0.2)  # let the log lines reach the file
            sizes = batch_sizes(server.log_path, offset)
            batches = sum(sizes.values())
            level["server_cpu_ms_per_request"] = round(
                (cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000 / level["requests"], 2
            )
            level["batches"] = batches
            level["mean_batch"] = (
                round(sum(n * c for n, c in sizes.items()) / batches, 2) if batches else None
            )
            level["batch_sizes"] = {str(n): c for n, c in sorted(sizes.items())}
            levels.append(level)
            log(f"throughput {clients} clients: {level['rps']} req/s")
    base = next((lv["rps"] for lv in levels if lv["clients"] == 1), None)
    top = max(levels, key=lambda lv: lv["clients"])
    speedup = round(top["rps"] / base, 2) if base else None
    errors = sum(lv["errors"] for lv in levels)
    # What the cores allow: at full load every request costs its server and client CPU,
    # so no scheduling can serve more than cores / (server + client CPU per request).
    cores = len(os.sched_getaffinity(0))
    per_request = top["server_cpu_ms_per_request"] + top["client_cpu_ms_per_request"]
    ceiling = round(cores * 1000 / per_request, 1) if per_request > 0 else None
    log("throughput: one forward pass shared against one each")
    sharing = _sharing(ctx, questions, top["clients"])
    return {
        "levels": levels,
        "cpu_ceiling_rps": ceiling,
        "cpu_ceiling_vs_1": round(ceiling / base, 2) if ceiling and base else None,
        "sharing": sharing,
        "speedup_top_vs_1": speedup,
        "top_clients": top["clients"],
        "target_speedup": TARGET_SPEEDUP,
        "errors": errors,
        "met": bool(speedup and speedup >= TARGET_SPEEDUP and errors == 0 and top["clients"] >= 16),
    }


def rows(r: dict) -> list[Row]:
    out: list[Row] = [
        (
            f"{lv['clients']:>2} clients",
            f"{lv['rps']:.0f} req/s, p50 {lv['p50_ms']:.1f}, p95 {lv['p95_ms']:.1f} ms",
            f"mean batch {lv['mean_batch']}, errors {lv['errors']}",
            f"cpu/request: server {lv.get('server_cpu_ms_per_request', 0):.1f} ms, "
            f"client {lv.get('client_cpu_ms_per_request', 0):.1f} ms",
        )
        for lv in r["levels"]
    ]
    out.append(
        (
            f"{r['top_clients']} clients / 1 client",
            f"{r['speedup_top_vs_1']}x",
            f"cpu ceiling {r['cpu_ceiling_rps']} req/s = {r['cpu_ceiling_vs_1']}x",
            f">= {TARGET_SPEEDUP}x, 0 errors {ok(r['met'])}",
        )
    )
    sharing = r["sharing"]
    for name, label in (("bare", "bare SentenceTransformer"), ("server", "server encoder")):
        e = sharing[name]
        out.append(
            (
                f"  {label}, batch {sharing['batch_size']}",
                f"cpu {e['shared_cpu_ms']:.2f} ms/q (wall {e['shared_wall_ms']:.2f})",
                f"alone: cpu {e['alone_cpu_ms']:.2f} ms (wall {e['alone_wall_ms']:.2f})",
                f"sharing saves {e['cpu_saved']:.0%} of the CPU",
            )
        )
    return out
