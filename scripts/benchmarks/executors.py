"""Executors: `--executor local` against `--executor ray` on the same corpus in the same
run (--corpus, then SciFact's corpus at half and in full): build time, its ratio to the
bare encode of the same texts, peak memory of the whole build (driver, Ray's processes
and actors), and Ray's own start-up time, separately."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts.benchmarks.context import ROOT, Context
from scripts.benchmarks.measure import log, timed
from scripts.benchmarks.report import Row, ok

# Targets (issue: builds that scale out): a Ray build at most 1.3x a local one at 14k
# chunks, and either executor's peak at most 2 GB there, the same at half the corpus.
TARGET_RAY_RATIO = 1.3
TARGET_PEAK_MB = 2048
# "The same peak": within this share of the half corpus's peak.
SAME_PEAK_TOLERANCE = 0.15
SCIFACT = Path("/work/shared/benchmarks/scifact")
# The smoke test's quick run: --corpus only (one local and one Ray build of it).
SMOKE_ARGS = ("--executors-scifact", "none")

# One build in a fresh process, so that each executor's peak memory is its own.
_CHILD = """
import json, resource, sys, time
from pathlib import Path
started = time.perf_counter()
from rag.runtime import configure
configure()
from rag.config import PipelineConfig
from rag.index import build_index
from rag.index.executors import make_executor
name, corpus, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
config = PipelineConfig()
executor = make_executor(name, config, progress=False)
try:
    report = build_index(corpus, out, config, executor=executor, use_cache=False)
finally:
    executor.close()
session = getattr(executor, "session", None)
print("BENCH " + json.dumps({
    "build_s": report.seconds,
    "process_s": time.perf_counter() - started,
    "chunks": report.chunks,
    "embedded": report.embedded,
    "ray_startup_s": session.startup_seconds if session else None,
    "ray_cpus": session.cpus if session else None,
    "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def add_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--executors-scifact",
        type=Path,
        default=SCIFACT,
        help="BEIR SciFact folder (corpus.jsonl...) for the executors section; 'none' skips it",
    )
    group.add_argument(
        "--executors-no-half",
        action="store_true",
        help="skip the build of half the SciFact corpus (the memory bound's comparison)",
    )


def tree(root: int) -> list[int]:
    """`root` and every live descendant."""
    import psutil

    try:
        return [root, *(c.pid for c in psutil.Process(root).children(recursive=True))]
    except psutil.NoSuchProcess:
        return [root]


def pss_kb(pid: int) -> tuple[int, int]:
    """(proportional set size, its anonymous and shared-memory part) of a process in kB;
    (0, 0) once it is gone. The rest is file pages mapped from disk (the index files the
    build reads back memory-mapped), which the kernel can drop under pressure."""
    fields: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("Pss", "Pss_Anon", "Pss_Shmem"):
                    fields[key] = int(value.split()[0])
    except OSError:
        pass
    return fields.get("Pss", 0), fields.get("Pss_Anon", 0) + fields.get("Pss_Shmem", 0)


class _TreeMemory(threading.Thread):
    """Samples the summed PSS of a process and all its descendants (Ray's head, its
    workers and actors included) every 0.25 s. PSS shares each shared page (Ray's
    object store, libraries) among the processes mapping it, so the sum counts it once."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.peak_anon_kb = 0
        self.peak_processes = 0
        # CPU seconds the sampling itself took: reading smaps_rollup walks each
        # process's page tables, a cost borne by the machine the build runs on, and
        # larger for a Ray build's dozen processes than for one local process.
        self.cpu_s = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        started = time.thread_time()
        try:
            self._sample()
        finally:
            self.cpu_s = time.thread_time() - started

    def _sample(self) -> None:
        while not self.stop.is_set():
            pids = tree(self.pid)
            sizes = [pss_kb(p) for p in pids]
            total = sum(t for t, _ in sizes)
            if total > self.peak_kb:
                self.peak_kb, self.peak_processes = total, len(pids)
            self.peak_anon_kb = max(self.peak_anon_kb, sum(a for _, a in sizes))
            self.stop.wait(0.25)


def _build(executor: str, corpus: Path, out: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, executor, str(corpus), str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = _TreeMemory(proc.pid)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{executor} build failed: {stderr.strip()[-2000:]}")
    line = next(ln for ln in stdout.splitlines() if ln.startswith("BENCH "))
    result = json.loads(line[len("BENCH ") :])
    result["peak_pss_mb"] = round(sampler.peak_kb / 1024, 1)
    result["peak_anon_shmem_mb"] = round(sampler.peak_anon_kb / 1024, 1)
    result["processes_at_peak"] = sampler.peak_processes
    result["sampler_cpu_s"] = round(sampler.cpu_s, 1)
    log(f"executors: {executor} build of {corpus}: {json.dumps(result)}")
    shutil.rmtree(out, ignore_errors=True)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}


def _embedded_texts(corpus: Path) -> list[str]:
    from rag.chunker import chunk_documents
    from rag.config import PipelineConfig
    from rag.corpus import read_corpus

    return [c.embedded for c in chunk_documents(read_corpus(corpus), PipelineConfig().chunker)]


def _scifact(ctx: Context, folder: Path) -> tuple[Path, Path]:
    """SciFact's corpus as files (one per document), and a folder with its first half."""
    from rag.evaluation.formats import import_beir

    root = ctx.work / "executors-scifact"
    if not (root / "corpus").is_dir():
        import_beir(folder, root)
    half = root / "half"
    if not half.is_dir():
        half.mkdir()
        files = sorted((root / "corpus").iterdir())
        for f in files[: len(files) // 2]:
            (half / f.name).write_bytes(f.read_bytes())
    return root / "corpus", half


def _compare(ctx: Context, name: str, corpus: Path, reference: bool) -> dict:
    log(f"executors: {name}: local build")
    local = _build("local", corpus, ctx.work / f"exec-{name}-local")
    log(f"executors: {name}: ray build")
    ray = _build("ray", corpus, ctx.work / f"exec-{name}-ray")
    out: dict = {"corpus": str(corpus), "local": local, "ray": ray}
    out["chunks"] = local["chunks"]
    out["ray_vs_local"] = round(ray["build_s"] / local["build_s"], 3)
    out["ray_after_startup_vs_local"] = round(
        (ray["build_s"] - (ray["ray_startup_s"] or 0.0)) / local["build_s"], 3
    )
    if reference:
        texts = _embedded_texts(corpus)
        batch = 32
        ctx.bare.encode(texts[:64], batch_size=batch)
        log(f"executors: {name}: bare encode of the {len(texts)} embedded texts")
        bare = timed(lambda: ctx.bare.encode(texts, batch_size=batch))
        out["bare_encode_s"] = round(bare, 3)
        out["local_vs_bare"] = round(local["build_s"] / bare, 3)
        out["ray_vs_bare"] = round(ray["build_s"] / bare, 3)
    return out


def run(ctx: Context) -> dict:
    results: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    results["corpus"] = _compare(ctx, "corpus", Path(ctx.args.corpus), reference=True)
    folder = ctx.args.executors_scifact
    if str(folder) != "none" and (Path(folder) / "corpus.jsonl").is_file():
        full, half = _scifact(ctx, Path(folder))
        if not ctx.args.executors_no_half:
            results["scifact_half"] = _compare(ctx, "scifact-half", half, reference=False)
        results["scifact"] = _compare(ctx, "scifact", full, reference=True)
        sci = results["scifact"]
        results["met_ray_ratio"] = sci["ray_vs_local"] <= TARGET_RAY_RATIO
        for executor in ("local", "ray"):
            peak = sci[executor]["peak_pss_mb"]
            met = peak <= TARGET_PEAK_MB
            if "scifact_half" in results:
                half_peak = results["scifact_half"][executor]["peak_pss_mb"]
                results[f"{executor}_peak_growth_half_to_full"] = round(peak / half_peak, 3)
                met = met and peak <= half_peak * (1 + SAME_PEAK_TOLERANCE)
            results[f"met_{executor}_peak"] = met
    results["load_after"] = os.getloadavg()[0]
    results["targets"] = {
        "ray_vs_local": TARGET_RAY_RATIO,
        "peak_mb": TARGET_PEAK_MB,
        "same_peak_tolerance": SAME_PEAK_TOLERANCE,
    }
    return results


def _peak(build: dict) -> str:
    return (
        f"peak {build['peak_pss_mb']:.0f} MB ({build['peak_anon_shmem_mb']:.0f} MB anon+shm;"
        f" sampling it took {build['sampler_cpu_s']:.1f} s CPU)"
    )


def _rows_for(label: str, r: dict) -> list[Row]:
    local, ray = r["local"], r["ray"]
    bare = f", bare encode {r['bare_encode_s']:.1f} s" if "bare_encode_s" in r else ""
    rows: list[Row] = [
        (
            f"{label}: local build, {r['chunks']} chunks",
            f"{local['build_s']:.1f} s",
            f"x{r['local_vs_bare']:.2f} bare{bare}" if bare else "",
            _peak(local),
        ),
        (
            f"{label}: ray build ({ray['ray_cpus']:.0f} CPUs)",
            f"{ray['build_s']:.1f} s",
            f"x{r['ray_vs_local']:.2f} local"
            + (f", x{r['ray_vs_bare']:.2f} bare" if "ray_vs_bare" in r else ""),
            _peak(ray),
        ),
        (
            f"{label}: ray start-up (in the build)",
            f"{ray['ray_startup_s']:.1f} s",
            f"after start-up x{r['ray_after_startup_vs_local']:.2f} local",
            "",
        ),
    ]
    return rows


def rows(r: dict) -> list[Row]:
    out = _rows_for(Path(r["corpus"]["corpus"]).name, r["corpus"])
    if "scifact_half" in r:
        out += _rows_for("SciFact half", r["scifact_half"])
    if "scifact" in r:
        out += _rows_for("SciFact", r["scifact"])
        out.append(
            (
                "SciFact: ray / local",
                f"{r['scifact']['ray_vs_local']:.2f}",
                f"target <= {TARGET_RAY_RATIO}",
                ok(r["met_ray_ratio"]),
            )
        )
        for executor in ("local", "ray"):
            growth = r.get(f"{executor}_peak_growth_half_to_full")
            out.append(
                (
                    f"SciFact: {executor} peak memory",
                    f"{r['scifact'][executor]['peak_pss_mb']:.0f} MB",
                    f"<= {TARGET_PEAK_MB} MB"
                    + (f", full/half {growth:.2f}" if growth is not None else ""),
                    ok(r[f"met_{executor}_peak"]),
                )
            )
    return out
