"""Scale measurements at one size, run in a subprocess of their own (so that the peak
RSS is that size's alone and its memory is freed after it):

  python -m scripts.benchmarks.scale_child dense N --queries Q --ef-search 16,32 [--ivf]
  python -m scripts.benchmarks.scale_child sparse N --queries Q --corpus seeds

print one JSON line. Generated data: see `vectors`, `queries` and `texts`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from scripts.benchmarks.measure import median, ms, peak_rss_mb, rss_mb

DIM = 384
K = 10


def vectors(n: int, seed: int) -> np.ndarray:
    """n normalised vectors in DIM dimensions with topical structure: points scattered
    around n/100 random topic centres (cosine ~0.5 to their centre), the way paragraph
    embeddings cluster by subject. Uniform random vectors would be all but orthogonal,
    which is both unrealistic and a worst case for graph indexes."""
    rng = np.random.default_rng(seed)
    topics = max(1, n // 100)
    centres = rng.standard_normal((topics, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for a in range(0, n, step):
        b = min(n, a + step)
        noise = rng.standard_normal((b - a, DIM), dtype=np.float32) / np.sqrt(DIM)
        block = centres[rng.integers(0, topics, b - a)] + 1.7 * noise
        out[a:b] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def queries(corpus: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Questions near a paragraph: a corpus vector plus noise (cosine ~0.8 to it)."""
    rng = np.random.default_rng(seed)
    picked = corpus[rng.integers(0, len(corpus), count)]
    noise = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(DIM)
    q = picked + 0.75 * noise
    return (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)


def exact_top(corpus: np.ndarray, qs: np.ndarray, k: int = K) -> np.ndarray:
    """The true top k by inner product, brute force in numpy, a few queries at a time:
    the ground truth every FAISS index (flat included) is scored against."""
    out = np.empty((len(qs), k), dtype=np.int64)
    for a in range(0, len(qs), 32):
        scores = qs[a : a + 32] @ corpus.T
        out[a : a + 32] = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return out


def _search_p50(index, qs: np.ndarray, k: int = K) -> float:
    times = []
    for q in qs:
        start = time.perf_counter()
        index.search(q[None, :], k)
        times.append(time.perf_counter() - start)
    return median(times)


def _index_bytes(index) -> int:
    """Bytes of a FAISS index as written to disk (its vectors and graph, no slack)."""
    import faiss

    with tempfile.NamedTemporaryFile(suffix=".faiss") as fh:
        faiss.write_index(index, fh.name)
        return os.path.getsize(fh.name)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth, strict=True))
    return round(hits / truth.size, 4)


def _built(build, n: int) -> tuple[object, dict]:
    """Build an index, timing it and the resident memory it added per vector."""
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = build()
    return index, {
        "build_s": round(time.perf_counter() - start, 3),
        "bytes_per_vector": round((rss_mb() - before) * 2**20 / n, 1),
    }


def dense(n: int, count: int, ef_values: list[int], ivf: bool) -> dict:
    import faiss

    from rag.index import dense as dense_mod
    from rag.index.dense import DenseIndex

    corpus = vectors(n, seed=n)
    qs = queries(corpus, count, seed=n + 1)
    truth = exact_top(corpus, qs)
    out: dict = {"n": n, "queries": len(qs)}

    flat, entry = _built(lambda: DenseIndex.build(corpus, "flat"), n)
    entry["index_bytes_per_vector"] = _index_bytes(flat.index) / n
    timing = qs[: 200 if n < 100_000 else 30]  # exact search at 1M takes long per query
    entry["search_p50_ms"] = ms(_search_p50(flat, timing))
    entry["recall_at_10"] = _recall(flat.search(qs, K)[1], truth)
    out["flat"] = entry
    del flat

    hnsw, entry = _built(lambda: DenseIndex.build(corpus, "hnsw"), n)
    entry["index_bytes_per_vector"] = _index_bytes(hnsw.index) / n
    entry["M"] = dense_mod.HNSW_M
    entry["ef_construction"] = dense_mod.HNSW_EF_CONSTRUCTION
    entry["ef_search_default"] = dense_mod.HNSW_EF_SEARCH
    entry["sweep"] = []
    for ef in sorted({*ef_values, dense_mod.HNSW_EF_SEARCH}):
        hnsw.index.hnsw.efSearch = ef
        found = hnsw.search(qs, K)[1]
        entry["sweep"].append(
            {
                "ef_search": ef,
                "search_p50_ms": ms(_search_p50(hnsw, qs)),
                "recall_at_10": _recall(found, truth),
            }
        )
    default = next(s for s in entry["sweep"] if s["ef_search"] == dense_mod.HNSW_EF_SEARCH)
    entry["search_p50_ms"] = default["search_p50_ms"]
    entry["recall_at_10"] = default["recall_at_10"]
    out["hnsw"] = entry
    del hnsw

    if ivf:
        nlist = int(min(max(16, 4 * np.sqrt(n)), 8192))

        def build_ivf():
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(DIM), DIM, nlist, faiss.METRIC_INNER_PRODUCT
            )
            pick = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
            index.train(corpus[pick])
            index.add(corpus)
            return index

        index, entry = _built(build_ivf, n)
        entry["index_bytes_per_vector"] = _index_bytes(index) / n
        entry["nlist"] = nlist
        entry["sweep"] = []
        for nprobe in (8, 16, 32, 64):
            index.nprobe = nprobe
            found = index.search(qs, K)[1]
            entry["sweep"].append(
                {
                    "nprobe": nprobe,
                    "search_p50_ms": ms(_search_p50(index, qs)),
                    "recall_at_10": _recall(found, truth),
                }
            )
        out["ivf"] = entry
    out["peak_rss_mb"] = peak_rss_mb()
    return out


_WORDS_RE = re.compile(r"[a-z]{3,}")


def texts(n: int, seed: int, corpus: Path) -> list[str]:
    """Short texts (8 to 40 words) drawn Zipf-like from the corpus vocabulary plus
    synthetic words, so the vocabulary grows with n like real text does."""
    rng = np.random.default_rng(seed)
    words = sorted(
        {
            w
            for p in corpus.glob("*")
            if p.is_file()
            for w in _WORDS_RE.findall(p.read_text().lower())
        }
    )
    syllables = ["ka", "lo", "mi", "ren", "tu", "sa", "vor", "el", "qui", "dan", "po", "ith"]
    extra = max(0, min(200_000, n // 5) - len(words))
    synth = [
        "".join(syllables[j] for j in rng.integers(0, len(syllables), rng.integers(2, 5)))
        for _ in range(extra)
    ]
    vocab = np.array(words + synth)
    ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
    prob = 1 / ranks**1.05
    prob /= prob.sum()
    lengths = rng.integers(8, 41, n)
    draws = rng.choice(len(vocab), size=int(lengths.sum()), p=prob)
    out, pos = [], 0
    for length in lengths:
        out.append(" ".join(vocab[draws[pos : pos + length]]))
        pos += length
    return out


def sparse(n: int, count: int, corpus: Path) -> dict:
    from rag.index.sparse import SparseIndex
    from rag.text import tokenize

    docs = texts(n, seed=n, corpus=corpus)
    rng = np.random.default_rng(n + 1)
    questions = []
    for i in rng.integers(0, n, count):  # words from a document, like a real question
        words = docs[i].split()
        questions.append(" ".join(words[: min(len(words), 8)]))
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    index = SparseIndex.build(docs)
    build_s = time.perf_counter() - start
    mem = rss_mb() - before

    times, topk = [], []
    k = 50
    for q in questions:
        start = time.perf_counter()
        s = index.scores(tokenize(q))
        mid = time.perf_counter()
        np.argpartition(-s, k - 1)[:k] if k < len(s) else None
        end = time.perf_counter()
        times.append(mid - start)
        topk.append(end - start)
    return {
        "n": n,
        "queries": len(questions),
        "build_s": round(build_s, 3),
        "memory_mb": round(mem, 1),
        "bytes_per_text": round(mem * 2**20 / n, 1),
        "query_p50_ms": ms(median(times)),
        "query_plus_top50_p50_ms": ms(median(topk)),
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("kind", choices=("dense", "sparse"))
    p.add_argument("n", type=int)
    p.add_argument("--queries", type=int, required=True)
    p.add_argument("--ef-search", default="", type=lambda s: [int(x) for x in s.split(",") if x])
    p.add_argument("--ivf", action="store_true")
    p.add_argument("--corpus", type=Path)
    args = p.parse_args(argv)
    # No rag.runtime.configure() here: it imports torch, whose few hundred MB would be
    # counted in this size's peak RSS, and nothing here runs the model.
    if args.kind == "dense":
        result = dense(args.n, args.queries, args.ef_search, args.ivf)
    else:
        if args.corpus is None:
            p.error("sparse needs --corpus (its words seed the generated texts)")
        result = sparse(args.n, args.queries, args.corpus)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
