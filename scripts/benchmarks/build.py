"""Build: a full index build against the bare encode of the chunk texts and of every
text the build actually embeds, interleaved; `rag index` in a subprocess for wall time
with the model load and peak RSS."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from scripts.benchmarks.context import ROOT, Context
from scripts.benchmarks.measure import timed
from scripts.benchmarks.report import Row, ok

TARGET_RATIO = 1.2


class _Recorder:
    """Wraps an Embedder's model calls to record every text the build embeds."""

    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.texts: list[str] = []
        self._saved = {}
        for name in ("encode", "encode_blocks", "encode_questions"):
            method = getattr(embedder, name, None)
            if method is not None:
                self._saved[name] = method
                setattr(embedder, name, self._wrap(method))

    def _wrap(self, method):
        def call(texts, *args, **kwargs):
            self.texts.extend(texts)
            return method(texts, *args, **kwargs)

        return call

    def restore(self) -> None:
        for name in self._saved:
            delattr(self.embedder, name)


def _chunks(corpus: Path) -> list:
    from rag.chunker import chunk_documents
    from rag.config import PipelineConfig
    from rag.corpus import read_corpus

    return chunk_documents(read_corpus(corpus), PipelineConfig().chunker)


def _build_child(corpus: Path, out: Path) -> dict:
    """`rag index --no-cache` in a subprocess: wall time (model load included) and its
    peak RSS, which the child reports from getrusage."""
    code = (
        "import resource, sys, time; t = time.perf_counter(); from rag.cli import main; "
        f"rc = main(['index', '--corpus', {str(corpus)!r}, '--out', {str(out)!r}, "
        "'--no-cache']); "
        "print('BENCH', time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH"))
    _, seconds, maxrss = line.split()
    return {"seconds": round(float(seconds), 3), "peak_rss_mb": round(int(maxrss) / 1024, 1)}


def run(ctx: Context) -> dict:
    from rag.config import PipelineConfig
    from rag.index import build_index

    corpus = ctx.args.corpus
    embedder = ctx.embedder
    bare = ctx.bare
    batch_size = PipelineConfig().embedder.batch_size
    chunks = _chunks(corpus)
    chunk_texts = [c.text for c in chunks]
    ctx.warm_up(ctx.questions())
    bare.encode(chunk_texts[:64], batch_size=batch_size)

    recorder = _Recorder(embedder)
    try:
        build_index(corpus, ctx.work / "build-warm", embedder=embedder, use_cache=False)
    finally:
        recorder.restore()
    embedded_texts = recorder.texts
    builds, ref_chunks, ref_embedded = [], [], []
    for i in range(ctx.args.build_repeats):  # interleaved with the references
        ref_chunks.append(timed(lambda: bare.encode(chunk_texts, batch_size=batch_size)))
        ref_embedded.append(timed(lambda: bare.encode(embedded_texts, batch_size=batch_size)))
        report = build_index(corpus, ctx.work / f"build-{i}", embedder=embedder, use_cache=False)
        builds.append(report.seconds)
        shutil.rmtree(ctx.work / f"build-{i}", ignore_errors=True)
    child = _build_child(corpus, ctx.work / "build-child")
    build = min(builds)
    out = {
        "documents": report.documents,
        "chunks": report.chunks,
        "texts_embedded": len(embedded_texts),
        "texts_embedded_chars": sum(map(len, embedded_texts)),
        "chunk_text_chars": sum(map(len, chunk_texts)),
        "repeats": ctx.args.build_repeats,
        "build_s": round(build, 3),
        "builds_s": [round(b, 3) for b in builds],
        "reference_chunk_texts_s": round(min(ref_chunks), 3),
        "reference_embedded_texts_s": round(min(ref_embedded), 3),
        "ratio_vs_chunk_texts": round(build / min(ref_chunks), 3),
        "ratio_vs_embedded_texts": round(build / min(ref_embedded), 3),
        "target_ratio": TARGET_RATIO,
        "cli_build_s_incl_model_load": child["seconds"],
        "cli_peak_rss_mb": child["peak_rss_mb"],
    }
    out["met_vs_chunk_texts"] = out["ratio_vs_chunk_texts"] <= TARGET_RATIO
    out["met_vs_embedded_texts"] = out["ratio_vs_embedded_texts"] <= TARGET_RATIO
    return out


def rows(r: dict) -> list[Row]:
    return [
        (
            f"full build, {r['chunks']} chunks",
            f"{r['build_s']:.2f} s",
            f"bare encode chunk texts {r['reference_chunk_texts_s']:.2f} s",
            f"ratio {r['ratio_vs_chunk_texts']:.2f} (<= {TARGET_RATIO}) "
            + ok(r["met_vs_chunk_texts"]),
        ),
        (
            f"  vs all {r['texts_embedded']} embedded texts",
            "",
            f"bare encode {r['reference_embedded_texts_s']:.2f} s",
            f"ratio {r['ratio_vs_embedded_texts']:.2f} {ok(r['met_vs_embedded_texts'])}",
        ),
        (
            "`rag index` in a subprocess",
            f"{r['cli_build_s_incl_model_load']:.2f} s",
            "model load included",
            f"peak RSS {r['cli_peak_rss_mb']:.0f} MB",
        ),
    ]
