"""Timing, percentiles, memory and logging shared by the benchmark sections."""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator

# The reference and the measured call alternate in blocks of this many questions, so
# both see the same machine load. Question by question, the reference's PyTorch threads,
# still spinning after its call, took a core from the server's next request (measured:
# POST /ask p50 10-12 ms interleaved that way, 7.5-8.4 ms in the one-client throughput run).
BLOCK = 10


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def pct(values: list[float], q: float) -> float:
    """Percentile (nearest rank on the sorted values), in the values' unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def blocks(items: list[str], size: int = BLOCK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
