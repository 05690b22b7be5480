"""Qdrant: the backend's collection settings (deploy/qdrant/collection.json) on Qdrant's
own engine (Qdrant Edge, in process) at --qdrant-points generated chunks, next to FAISS
on the same vectors: build, dense and BM25 top 50 with and without a source filter,
recall@10, bytes per chunk of each vector kind on disk; and at --qdrant-token-points
chunks with token embeddings, late interaction (MaxSim) inside the engine as a rerank
stage against fetching the candidates' tokens and scoring here. No Qdrant server runs
here: these are one shard's engine timings, without network or replication."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from scripts.benchmarks.context import Context
from scripts.benchmarks.measure import log, median, ms, pct
from scripts.benchmarks.report import Row
from scripts.benchmarks.scale_child import exact_top, queries, vectors

DIM = 384
K = 50
TOP = 10
SOURCES = 1000  # files the generated chunks belong to
FILTER_SOURCES = 10  # a filtered question searches 1% of the corpus
VOCABULARY = 50_000  # BM25 terms, drawn Zipf-like
CANDIDATES = 100  # MaxSim candidates per question
# Options that make the section run in seconds (tests/scripts/test_bench_smoke.py).
SMOKE_ARGS = ("--qdrant-points", "2000", "--qdrant-token-points", "200", "--qdrant-queries", "10")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qdrant-points", type=int, default=100_000)
    parser.add_argument("--qdrant-token-points", type=int, default=10_000)
    parser.add_argument("--qdrant-queries", type=int, default=200)


def _terms(rng: np.random.Generator, count: int, mean: float) -> list[list[str]]:
    """Documents of Zipf-distributed terms (rank r drawn with weight 1/r)."""
    weights = 1.0 / np.arange(1, VOCABULARY + 1)
    weights /= weights.sum()
    lengths = np.maximum(1, rng.poisson(mean, count))
    flat = rng.choice(VOCABULARY, size=int(lengths.sum()), p=weights)
    out, at = [], 0
    for n in lengths.tolist():
        out.append([f"t{t}" for t in flat[at : at + n].tolist()])
        at += n
    return out


def _disk(shard: Path) -> dict[str, int]:
    """Bytes allocated on disk per component of the shard's segments (WAL left out)."""
    parts: dict[str, int] = {}
    for path in shard.glob("segments/*/*"):
        name = path.name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        parts[name] = parts.get(name, 0) + sum(p.stat().st_blocks * 512 for p in files)
    return parts


def _timed(fn, runs: list) -> list[float]:
    out = []
    for item in runs:
        start = time.perf_counter()
        fn(item)
        out.append(time.perf_counter() - start)
    return out


def _seeds_payload(ctx: Context) -> dict:
    """Bytes of the payload the backend stores per chunk (chunk, key, links, token ids
    and spans), as JSON, over the real chunks of --corpus, and tokens per chunk."""
    from rag.index.backend import open_backend
    from rag.index.manifest import Manifest

    manifest = Manifest.load(ctx.index)
    backend = open_backend(ctx.index, manifest)
    try:
        from dataclasses import asdict

        # Every chunk: a dense search as wide as the index (exact over the seeds).
        ids = [cid for cid, _ in backend.dense_search(np.ones(DIM, np.float32), backend.count())]
        sizes, tokens = [], []
        for record in backend.fetch(ids, tokens=True):
            payload = {
                **asdict(record.chunk),
                "key": record.key,
                "duplicates": list(record.duplicates),
                "previous": record.previous,
                "token_ids": np.asarray(record.token_ids).tolist(),
                "token_spans": np.asarray(record.token_spans).tolist(),
            }
            sizes.append(len(json.dumps(payload, ensure_ascii=False).encode()))
            tokens.append(len(record.token_ids))
    finally:
        backend.close()
    return {
        "chunks": len(sizes),
        "payload_bytes_mean": round(float(np.mean(sizes)), 1),
        "tokens_per_chunk_mean": round(float(np.mean(tokens)), 1),
    }


def run(ctx: Context) -> dict:
    import faiss
    import qdrant_edge as edge

    from rag.index.backends import qdrant_sparse
    from rag.index.backends.qdrant_edge import create_shard
    from rag.index.backends.qdrant_settings import DENSE, SPARSE, load_settings
    from rag.index.dense import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

    args = ctx.args
    n, nq = args.qdrant_points, args.qdrant_queries
    settings = load_settings(dimension=DIM)
    seeds = _seeds_payload(ctx)
    rng = np.random.default_rng(11)
    work = ctx.work / "qdrant-edge"
    shutil.rmtree(work, ignore_errors=True)
    out: dict = {"points": n, "queries": nq, "seeds": seeds, "settings": str(settings.path)}

    log(f"qdrant: generating {n:,} chunks")
    corpus = vectors(n, seed=5)
    qs = queries(corpus, nq, seed=6)
    truth = exact_top(corpus, qs, TOP)
    docs = _terms(rng, n, mean=30.0)
    avgdl = qdrant_sparse.average_length(docs)
    question_terms = _terms(rng, nq, mean=4.0)

    log("qdrant: edge upsert + optimize")
    shard = create_shard(work / "main", settings)
    start = time.perf_counter()
    for lo in range(0, n, 1000):
        points = []
        for i in range(lo, min(n, lo + 1000)):
            sparse = qdrant_sparse.document_vector(docs[i], avgdl)
            points.append(
                edge.Point(
                    i,
                    {DENSE: corpus[i], SPARSE: edge.SparseVector(sparse.indices, sparse.values)},
                    {"source": f"s{i % SOURCES}.txt"},
                )
            )
        shard.update(edge.UpdateOperation.upsert_points(points))
    upsert_s = time.perf_counter() - start
    start = time.perf_counter()
    shard.optimize()
    optimize_s = time.perf_counter() - start
    shard.flush()
    disk = _disk(work / "main")
    names = [f"s{i}.txt" for i in range(FILTER_SOURCES)]
    source_filter = edge.Filter(must=[edge.FieldCondition("source", match=edge.MatchAny(names))])
    params = edge.SearchParams(hnsw_ef=settings.hnsw_ef)

    def dense(q: np.ndarray, flt=None) -> list:
        return shard.query(
            edge.QueryRequest(
                limit=K, query=edge.Query.Nearest(q, using=DENSE), filter=flt, params=params
            )
        )

    found = [dense(q) for q in qs]
    recall = float(
        np.mean(
            [
                len({p.id for p in f[:TOP]} & set(t.tolist())) / TOP
                for f, t in zip(found, truth, strict=True)
            ]
        )
    )
    t_dense = _timed(dense, list(qs))
    t_filter = _timed(lambda q: dense(q, source_filter), list(qs))
    check = shard.query(
        edge.QueryRequest(
            limit=K,
            query=edge.Query.Nearest(qs[0], using=DENSE),
            filter=source_filter,
            with_payload=True,
        )
    )
    matching = sum(1 for i in range(n) if i % SOURCES < FILTER_SOURCES)
    if len(check) != min(K, matching) or {p.payload["source"] for p in check} - set(names):
        raise RuntimeError("the source filter let other sources through")

    def lexical(terms: list[str]) -> list:
        query = qdrant_sparse.query_vector(terms)
        return shard.query(
            edge.QueryRequest(
                limit=K,
                query=edge.Query.Nearest(
                    edge.SparseVector(query.indices, query.values), using=SPARSE
                ),
            )
        )

    t_sparse = _timed(lexical, question_terms)
    shard.close()

    log("qdrant: faiss hnsw on the same vectors")
    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    hnsw.add(corpus)
    faiss_build_s = time.perf_counter() - start
    hnsw.hnsw.efSearch = HNSW_EF_SEARCH
    _, ids = hnsw.search(qs, TOP)
    faiss_recall = float(
        np.mean(
            [len(set(a.tolist()) & set(t.tolist())) / TOP for a, t in zip(ids, truth, strict=True)]
        )
    )
    t_faiss = _timed(lambda q: hnsw.search(q[None, :], K), list(qs))

    per_point = {k: round(v / n, 1) for k, v in sorted(disk.items())}
    out["engine"] = {
        "upsert_s": round(upsert_s, 1),
        "optimize_s": round(optimize_s, 1),
        "dense_top50_p50_ms": ms(median(t_dense)),
        "dense_top50_p95_ms": ms(pct(t_dense, 95)),
        "dense_recall_at_10": round(recall, 3),
        "dense_filtered_1pct_p50_ms": ms(median(t_filter)),
        "bm25_top50_p50_ms": ms(median(t_sparse)),
        "bm25_top50_p95_ms": ms(pct(t_sparse, 95)),
        "disk_bytes_per_point": per_point,
    }
    out["faiss"] = {
        "build_s": round(faiss_build_s, 1),
        "hnsw_top50_p50_ms": ms(median(t_faiss)),
        "recall_at_10": round(faiss_recall, 3),
    }
    out["late"] = _late(ctx, settings, seeds["tokens_per_chunk_mean"], work)
    out["sizing"] = _sizing(per_point, out["late"], seeds)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _late(ctx: Context, settings, tokens_per_chunk: float, work: Path) -> dict:
    """MaxSim of CANDIDATES dense candidates: inside the engine (prefetch + rerank in one
    query) against fetching their token embeddings and scoring them here."""
    import qdrant_edge as edge

    from rag.index.backends.qdrant_edge import create_shard
    from rag.index.backends.qdrant_settings import DENSE, TOKENS

    m, nq = ctx.args.qdrant_token_points, min(ctx.args.qdrant_queries, 100)
    rng = np.random.default_rng(12)
    pooled = vectors(m, seed=7)
    per_chunk = max(1, round(tokens_per_chunk))
    log(f"qdrant: {m:,} chunks with {per_chunk} tokens each")
    shard = create_shard(work / "tokens", settings)
    start = time.perf_counter()
    for lo in range(0, m, 200):
        points = []
        for i in range(lo, min(m, lo + 200)):
            # Tokens near their chunk's pooled vector, as contextual embeddings are.
            noise = rng.standard_normal((per_chunk, DIM), dtype=np.float32) / np.sqrt(DIM)
            toks = pooled[i] + 1.5 * noise
            toks /= np.linalg.norm(toks, axis=1, keepdims=True)
            points.append(
                edge.Point(
                    i, {DENSE: pooled[i], TOKENS: toks.astype(np.float16).astype(np.float32)}
                )
            )
        shard.update(edge.UpdateOperation.upsert_points(points))
    upsert_s = time.perf_counter() - start
    shard.optimize()
    shard.flush()
    disk = _disk(work / "tokens")
    qs = queries(pooled, nq, seed=8)
    # A question's content word pieces: 8 tokens near it, IDF-like weights folded in.
    q_tokens = []
    for q in qs:
        t = q + 1.5 * rng.standard_normal((8, DIM), dtype=np.float32) / np.sqrt(DIM)
        t /= np.linalg.norm(t, axis=1, keepdims=True)
        q_tokens.append((t * rng.uniform(0.5, 3.0, (8, 1))).astype(np.float32))

    def candidates(q: np.ndarray) -> list:
        return shard.query(
            edge.QueryRequest(limit=CANDIDATES, query=edge.Query.Nearest(q, using=DENSE))
        )

    def inside(i: int) -> list:
        return shard.query(
            edge.QueryRequest(
                limit=TOP,
                prefetches=[
                    edge.Prefetch(CANDIDATES, query=edge.Query.Nearest(qs[i], using=DENSE))
                ],
                query=edge.Query.Nearest(q_tokens[i], using=TOKENS),
            )
        )

    fetched_bytes: list[int] = []
    fetch_s: list[float] = []
    score_s: list[float] = []

    def here(i: int) -> list[int]:
        start = time.perf_counter()
        ids = [p.id for p in candidates(qs[i])]
        records = shard.retrieve(ids, with_payload=False, with_vector=[TOKENS])
        docs = [np.asarray(r.vector[TOKENS], dtype=np.float32) for r in records]
        middle = time.perf_counter()
        scores = [float((q_tokens[i] @ doc.T).max(axis=1).sum()) for doc in docs]
        order = np.argsort(-np.asarray(scores))[:TOP]
        fetch_s.append(middle - start)
        score_s.append(time.perf_counter() - middle)
        fetched_bytes.append(sum(doc.size * 2 for doc in docs))  # float16 from a server
        return [ids[j] for j in order]

    runs = list(range(nq))
    t_candidates = _timed(lambda i: candidates(qs[i]), runs)
    t_inside = _timed(inside, runs)
    t_here = _timed(here, runs)
    same = np.mean([[p.id for p in inside(i)] == here(i) for i in runs[:20]])
    shard.close()
    tokens_bytes = sum(v for k, v in disk.items() if k.endswith(f"-{TOKENS}"))
    return {
        "points": m,
        "tokens_per_chunk": per_chunk,
        "upsert_s": round(upsert_s, 1),
        "dense_top100_p50_ms": ms(median(t_candidates)),
        "maxsim_inside_p50_ms": ms(median(t_inside)),
        "maxsim_inside_p95_ms": ms(pct(t_inside, 95)),
        "maxsim_here_p50_ms": ms(median(t_here)),
        "maxsim_here_p95_ms": ms(pct(t_here, 95)),
        # Of which: candidates + fetching their tokens into numpy, and MaxSim itself.
        "here_fetch_p50_ms": ms(median(fetch_s)),
        "here_maxsim_p50_ms": ms(median(score_s)),
        "fetched_kb_per_question": round(float(np.mean(fetched_bytes)) / 1024, 1),
        "same_top10_share": round(float(same), 3),
        "tokens_disk_bytes_per_point": round(tokens_bytes / m, 1),
    }


def _sizing(per_point: dict, late: dict, seeds: dict) -> dict:
    """Per chunk and per 10M chunks, from the measured bytes. Dense vectors, their HNSW
    graph and the sparse index sit in RAM (the settings' defaults); token embeddings
    and payload on disk (mmap, paged in on use)."""
    dense = sum(v for k, v in per_point.items() if k.endswith("-dense"))
    sparse = sum(v for k, v in per_point.items() if k.endswith("-bm25"))
    tokens = late["tokens_disk_bytes_per_point"]
    # Seeds-like payload with real tokens per chunk (the generated one holds a name only).
    payload = seeds["payload_bytes_mean"]
    per_chunk = {"dense+hnsw": dense, "bm25 sparse": sparse, "tokens": tokens, "payload": payload}
    ram = dense + sparse
    disk = dense + sparse + tokens + payload
    return {
        "bytes_per_chunk": {k: round(v, 1) for k, v in per_chunk.items()},
        "per_10M_ram_gb": round(ram * 1e7 / 1e9, 1),
        "per_10M_disk_gb": round(disk * 1e7 / 1e9, 1),
    }


def rows(r: dict) -> list[Row]:
    e, f, late, size = r["engine"], r["faiss"], r["late"], r["sizing"]
    n = f"n={r['points']:,}"
    b = size["bytes_per_chunk"]
    return [
        (f"edge build {n}", f"upsert {e['upsert_s']} s + optimize {e['optimize_s']} s",
         f"faiss hnsw build {f['build_s']} s", ""),
        (f"dense top-50 {n}", f"edge p50 {e['dense_top50_p50_ms']:.2f} ms, R@10 "
         f"{e['dense_recall_at_10']:.3f}",
         f"faiss hnsw p50 {f['hnsw_top50_p50_ms']:.2f} ms, R@10 {f['recall_at_10']:.3f}", ""),
        ("dense top-50, 1% filter", f"edge p50 {e['dense_filtered_1pct_p50_ms']:.2f} ms", "", ""),
        (f"bm25 top-50 {n}", f"edge p50 {e['bm25_top50_p50_ms']:.2f} ms "
         f"(p95 {e['bm25_top50_p95_ms']:.2f})", "", ""),
        (f"maxsim {CANDIDATES} cands, n={late['points']:,}",
         f"in engine p50 {late['maxsim_inside_p50_ms']:.2f} ms",
         f"fetch+here p50 {late['maxsim_here_p50_ms']:.2f} ms (fetch "
         f"{late['here_fetch_p50_ms']:.1f}, MaxSim {late['here_maxsim_p50_ms']:.1f}), "
         f"{late['fetched_kb_per_question']:.0f} KB/question; dense only "
         f"{late['dense_top100_p50_ms']:.2f} ms; same top 10 {late['same_top10_share']:.2f}", ""),
        ("bytes per chunk", f"dense+hnsw {b['dense+hnsw']:.0f}, bm25 {b['bm25 sparse']:.0f}",
         f"tokens {b['tokens']:.0f}, payload {b['payload']:.0f}", ""),
        ("per 10M chunks", f"RAM {size['per_10M_ram_gb']} GB",
         f"disk {size['per_10M_disk_gb']} GB", ""),
    ]  # fmt: skip
