"""Rebuild: an unchanged corpus rebuilt, as % of a full build; then one file added,
changed and deleted: what is re-embedded, whether chunk records, dense and sparse
indexes still agree, and whether a question finds the new file (and not the deleted one)."""

from __future__ import annotations

import shutil
from pathlib import Path

from scripts.benchmarks.context import Context
from scripts.benchmarks.report import Row, ok

TARGET_PCT = 5.0
NEW_FILE = """Lighthouses of the Quillon Archipelago

The Quillon lighthouse keepers' guild was founded in 1887 by eleven families of zebrafish \
breeders who also kept the lamps burning on the northern reefs.

In 1931 the guild replaced the paraffin lamps with a clockwork lens that turned once every \
forty seconds, a rhythm sailors called the Quillon heartbeat.

The last resident keeper, Marisol Ventrano, left the Tarrow Point light in 1979 after \
forty-two years of service.
"""
NEW_NAME = "zz_bench_new.txt"
NEW_QUESTION = "Who was the last resident keeper of the Tarrow Point light?"


def _consistency(index_dir: Path, embedder, question: str) -> dict:
    from rag.index import load_index
    from rag.pipeline import QA

    index = load_index(index_dir)
    qa = QA(index, embedder)
    result = qa.ask(question)
    local = index.backend  # the local backend: its FAISS and BM25 sizes are checked too
    count = local.count()
    sizes = {count, local.dense.size, local.sparse.size, index.manifest.counts.chunks}
    return {
        "chunks": count,
        "dense_count": local.dense.size,
        "sparse_count": local.sparse.size,
        "consistent": len(sizes) == 1,
        "top_source": result.citations[0].source if result.citations else None,
        "index": index,
    }


def run(ctx: Context) -> dict:
    from rag.index import build_index

    embedder = ctx.embedder
    corpus = ctx.work / "rebuild-corpus"
    out = ctx.work / "rebuild-index"
    shutil.rmtree(corpus, ignore_errors=True)
    shutil.copytree(ctx.args.corpus, corpus)
    ctx.warm_up(ctx.questions())

    full = build_index(corpus, out, embedder=embedder, use_cache=False)
    unchanged = [build_index(corpus, out, embedder=embedder) for _ in range(ctx.args.build_repeats)]
    unchanged_s = min(r.seconds for r in unchanged)
    result: dict = {
        "full_build_s": round(full.seconds, 3),
        "full_embedded": full.embedded,
        "unchanged_rebuild_s": round(unchanged_s, 3),
        "unchanged_embedded": unchanged[-1].embedded,
        "unchanged_reused": unchanged[-1].reused,
        "unchanged_pct_of_full": round(100 * unchanged_s / full.seconds, 2),
        "target_pct": TARGET_PCT,
        "steps": [],
    }

    def step(name: str, target: str, question: str) -> None:
        report = build_index(corpus, out, embedder=embedder)
        check = _consistency(out, embedder, question)
        index = check.pop("index")
        file_chunks = sum(1 for c in index.backend.chunks if c.source == target)
        entry = {
            "step": name,
            "file": target,
            "seconds": round(report.seconds, 3),
            "embedded": report.embedded,
            "reused": report.reused,
            "file_chunks_after": file_chunks,
            **check,
        }
        if name == "add":
            entry["only_that_file"] = report.embedded == file_chunks
            entry["query_finds_it"] = check["top_source"] == target
        elif name == "change":
            entry["only_that_file"] = 0 < report.embedded <= file_chunks
        else:
            entry["only_that_file"] = report.embedded == 0
            entry["query_finds_it"] = check["top_source"] != target
        result["steps"].append(entry)

    (corpus / NEW_NAME).write_text(NEW_FILE, encoding="utf-8")
    step("add", NEW_NAME, NEW_QUESTION)
    victim = sorted(p.name for p in corpus.iterdir() if p.name != NEW_NAME)[0]
    text = (corpus / victim).read_text(encoding="utf-8")
    paragraphs = text.split("\n\n")
    middle = len(paragraphs) // 2
    paragraphs[middle] += " The bench added this sentence about copper kettles."
    (corpus / victim).write_text("\n\n".join(paragraphs), encoding="utf-8")
    step("change", victim, "What did the bench add about copper kettles?")
    (corpus / NEW_NAME).unlink()
    step("delete", NEW_NAME, NEW_QUESTION)

    result["met_time"] = result["unchanged_pct_of_full"] <= TARGET_PCT and (
        result["unchanged_embedded"] == 0
    )
    result["met_incremental"] = all(
        s["only_that_file"] and s["consistent"] and s.get("query_finds_it", True)
        for s in result["steps"]
    )
    return result


def rows(r: dict) -> list[Row]:
    out: list[Row] = [
        (
            "unchanged corpus",
            f"{r['unchanged_rebuild_s']:.3f} s ({r['unchanged_embedded']} embedded)",
            f"full build {r['full_build_s']:.2f} s",
            f"{r['unchanged_pct_of_full']:.1f}% (<= {TARGET_PCT:.0f}%) {ok(r['met_time'])}",
        )
    ]
    for st in r["steps"]:
        out.append(
            (
                f"{st['step']} one file",
                f"{st['seconds']:.3f} s, embedded {st['embedded']}",
                f"file has {st['file_chunks_after']} chunks; index {st['chunks']} chunks",
                f"consistent {st['consistent']}, only that file {st['only_that_file']}"
                + (f", query {st['query_finds_it']}" if "query_finds_it" in st else ""),
            )
        )
    return out
