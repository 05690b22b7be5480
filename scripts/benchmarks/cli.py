"""Arguments, the section registry and the run loop: `python scripts/bench.py --help`."""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from scripts.benchmarks import (
    build,
    executors,
    latency,
    qdrant,
    rebuild,
    scale,
    startup,
    throughput,
)
from scripts.benchmarks.context import ROOT, Context
from scripts.benchmarks.measure import log
from scripts.benchmarks.report import Section, machine, render, versions

# The registry: the names --sections takes, in the order they run and are reported.
# A section is one module with run(ctx) and rows(result), and optionally add_arguments.
SECTIONS: dict[str, Section] = {
    "latency": latency,
    "throughput": throughput,
    "build": build,
    "rebuild": rebuild,
    "scale": scale,
    "startup": startup,
    "qdrant": qdrant,
    "executors": executors,
}

USAGE = """
Usage:
  python scripts/bench.py --out bench.json                 # everything (1M: ~30 min)
  python scripts/bench.py --sections latency,throughput    # a subset
  python scripts/bench.py --sections scale --scale-max 1e6 --out scale.json
The machine is shared and has few cores: figures are noisy, so every ratio is taken
from measurements interleaved with their reference in the same run.
"""


def _description() -> str:
    lines = ["Performance benchmark: every figure beside the reference it is judged against.", ""]
    lines.append("Sections (choose with --sections, default all):")
    for name, section in SECTIONS.items():
        about = " ".join((section.__doc__ or "").split())
        lines.append(
            textwrap.fill(about, 88, initial_indent=f"  {name:<11} ", subsequent_indent=" " * 14)
        )
    return "\n".join(lines) + "\n" + USAGE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench.py", description=_description(), formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--sections", default="all", help=f"comma list of {', '.join(SECTIONS)}")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    p.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    p.add_argument("--questions", type=Path, default=ROOT / "scripts/questions/seeds.jsonl")
    p.add_argument("--max-questions", type=int, default=0, help="0: all")
    p.add_argument("--build-repeats", type=int, default=3, help="builds per build/rebuild figure")
    p.add_argument("--workdir", type=Path, help="keep work files here (default: a temp dir)")
    for name, section in SECTIONS.items():
        add_arguments = getattr(section, "add_arguments", None)
        if add_arguments is not None:
            add_arguments(p.add_argument_group(name))
    return p.parse_args(argv)


def run(args: argparse.Namespace, chosen: list[str], work: Path) -> dict:
    """Run the chosen sections in registry order; a failing section is recorded as its
    error and the others still run."""
    results: dict = {
        "machine": machine(),
        "versions": versions(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "sections": {},
    }
    ctx = Context(args, work)
    for name, section in SECTIONS.items():
        if name not in chosen:
            continue
        log(f"section {name}")
        start = time.perf_counter()
        try:
            results["sections"][name] = section.run(ctx)
        except Exception as exc:  # one broken section must not hide the others
            log(f"section {name} failed: {type(exc).__name__}: {exc}")
            results["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        results["sections"][name]["section_seconds"] = round(time.perf_counter() - start, 1)
        gc.collect()
    results["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = list(SECTIONS) if args.sections == "all" else args.sections.split(",")
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; valid: {', '.join(SECTIONS)}")
    from rag.runtime import configure

    configure()
    with contextlib.ExitStack() as stack:
        if args.workdir:
            work = args.workdir
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rag-bench-")))
        results = run(args, chosen, work)
    text = render(results, SECTIONS)
    results["table"] = text
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if any("error" in r for r in results["sections"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
