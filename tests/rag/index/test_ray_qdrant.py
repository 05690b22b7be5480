"""The Ray build into Qdrant (embedded mode, the real model, real Ray): the points are
upserted by a Ray writer actor, not by the driver; the collection equals the one a
local build writes and answers the seeds question set the same; the embedding cache's
vectors are written by the driver; a writer killed mid-upsert fails the build (or is
restarted) and the previous index keeps serving.

Ray is the session's (`ray_head`, conftest.py); the builds and helpers are
test_ray_executor.py's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.config import IndexConfig, PipelineConfig
from rag.index.build import BuildReport
from tests.conftest import ROOT, SEEDS
from tests.rag.index.test_ray_executor import (
    NEW_PARAGRAPH,
    _answers,
    _Killer,
    _ray_build,
    _ray_processes,
    _seeds_with_a_new_paragraph,
    _triple_seeds,
    _wait_gone,
)

QDRANT = PipelineConfig(index=IndexConfig(backend="qdrant"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_qdrant(
    clean_env: None, ray_head: object, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, BuildReport]:
    out = tmp_path_factory.mktemp("ray-qdrant") / "index"
    return out, _ray_build(SEEDS, out, QDRANT)


@pytest.fixture(scope="module")
def local_qdrant(
    clean_env: None, tmp_path_factory: pytest.TempPathFactory, embedder: object
) -> Path:
    """The seeds into Qdrant by the local executor: the driver upserts every point."""
    from rag.index import build_index

    out = tmp_path_factory.mktemp("local-qdrant") / "index"
    build_index(SEEDS, out, QDRANT, embedder=embedder)  # type: ignore[arg-type]
    return out


def _worker_writers(report: BuildReport) -> dict[str, int]:
    return {name: n for name, n in report.writers.items() if name != "driver"}


def _points(index: Path) -> dict[int, object]:
    from rag.index.backend import open_backend
    from rag.index.manifest import Manifest

    backend = open_backend(index, Manifest.load(index))
    try:
        ids = [int(i) for i in sorted(_all_ids(backend))]
        assert backend.count() == len(ids)
        return {r.id: r for r in backend.fetch(ids, tokens=True)}
    finally:
        backend.close()


def _all_ids(backend: object) -> set[int]:
    client, collection = backend.client, backend.collection  # type: ignore[attr-defined]
    ids: set[int] = set()
    offset = None
    while True:
        points, offset = client.scroll(collection, limit=256, offset=offset, with_payload=False)
        ids.update(int(p.id) for p in points)
        if offset is None:
            return ids


def test_every_point_is_upserted_by_one_ray_writer_process_not_the_driver(
    ray_qdrant: tuple[Path, BuildReport], ray_head: object
) -> None:
    from rag.index.manifest import Manifest

    out, report = ray_qdrant
    assert (report.embedded, report.reused) == (report.chunks, 0)
    workers = _worker_writers(report)
    # Embedded mode: exactly one writer holds the store, and it is not this process.
    assert len(workers) == 1, report.writers
    ((name, count),) = workers.items()
    host, pid = name.rsplit(":", 1)
    assert int(pid) != os.getpid() and host == os.uname().nodename
    assert count == report.chunks == 218 and report.writers["driver"] == 0
    manifest = Manifest.load(out)
    assert (manifest.backend.kind, manifest.executor) == ("qdrant", "ray")
    assert manifest.build[f"written_by {name}"] == 218
    assert manifest.build["written_by driver"] == 0
    # The writer was a Ray actor of the session; Ray stops it once the pipeline ends.
    assert _wait_gone(list(_writers(ray_head))) == []


def test_the_workers_collection_is_the_drivers_and_answers_the_same(
    ray_qdrant: tuple[Path, BuildReport], local_qdrant: Path, embedder: object
) -> None:
    out, _ = ray_qdrant
    ray_points, local_points = _points(out), _points(local_qdrant)
    assert ray_points.keys() == local_points.keys() and len(ray_points) == 218
    for cid, a in ray_points.items():
        b = local_points[cid]
        # Chunk, cache key, duplicates and neighbour (set by the driver at the end).
        assert (a.chunk, a.key, a.duplicates, a.previous) == (
            b.chunk,
            b.key,
            b.duplicates,
            b.previous,
        )  # type: ignore[attr-defined]
        assert float(a.vector @ b.vector) > 0.9999  # type: ignore[attr-defined]
        assert np.array_equal(a.token_ids, b.token_ids)  # type: ignore[attr-defined]
    assert any(p.duplicates for p in ray_points.values())  # type: ignore[attr-defined]
    # Sparse vectors: rewritten by the driver for the corpus's length, as BM25 needs.
    from rag.index.backend import open_backend
    from rag.index.manifest import Manifest

    terms = ["iran", "protests", "smagin", "economic"]
    ids = sorted(ray_points)
    scores = []
    for index in (out, local_qdrant):
        backend = open_backend(index, Manifest.load(index))
        try:
            scores.append(backend.lexical_scores(terms, ids))
        finally:
            backend.close()
    assert (scores[0] > 0).sum() > 10
    assert np.allclose(scores[0], scores[1], atol=1e-4)
    # The same answers, with the same citations, to every question of the seeds set.
    assert _answers(out, embedder) == _answers(local_qdrant, embedder)


def test_a_rebuild_reuses_every_vector_and_the_driver_writes_the_reused(
    ray_qdrant: tuple[Path, BuildReport], tmp_path: Path
) -> None:
    out = tmp_path / "index"
    shutil.copytree(ray_qdrant[0], out)
    before = _points(out)
    kept = _ray_build(SEEDS, out, QDRANT)
    assert kept.unchanged and (kept.embedded, kept.reused) == (0, kept.chunks)
    # Another duplicate threshold: rebuilt through the pipeline, every encoding taken
    # from the previous collection; no text reaches a writer, the driver writes them.
    changed = replace(QDRANT, index=replace(QDRANT.index, duplicate_jaccard=0.7))
    report = _ray_build(SEEDS, out, changed)
    assert not report.unchanged
    assert (report.embedded, report.reused) == (0, report.chunks)
    assert report.writers == {}
    after = _points(out)
    assert after.keys() == before.keys()
    for cid, a in after.items():
        b = before[cid]
        assert np.array_equal(a.vector, b.vector) and np.array_equal(a.tokens, b.tokens)  # type: ignore[attr-defined]


def test_a_changed_file_is_written_by_the_worker_and_the_rest_by_the_driver(
    ray_qdrant: tuple[Path, BuildReport], ray_head: object, tmp_path: Path
) -> None:
    """Through `rag index`, as a user runs it."""
    from rag.index.manifest import Manifest

    corpus = _seeds_with_a_new_paragraph(tmp_path / "corpus")
    out = tmp_path / "index"
    shutil.copytree(ray_qdrant[0], out)
    address = ray_head.address  # type: ignore[attr-defined]
    done = subprocess.run(
        [
            *(sys.executable, "-m", "rag", "index", "--corpus", str(corpus), "--out", str(out)),
            *("--backend", "qdrant", "--executor", "ray", "--ray-address", address),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    build = Manifest.load(out).build
    chunks = Manifest.load(out).counts.chunks
    assert 0 < build["embedded"] < chunks and build["reused"] == chunks - build["embedded"]
    ((_, count),) = (
        (k, n) for k, n in build.items() if k.startswith("written_by ") and k != "written_by driver"
    )
    assert count == build["embedded"] and build["written_by driver"] == build["reused"]
    assert (
        f"points upserted by 1 Ray writer process(es): {count}; by this process (reused "
        f"vectors): {build['reused']}" in done.stdout
    )
    points = _points(out)
    assert len(points) == chunks
    assert any(NEW_PARAGRAPH.strip() in p.chunk.text for p in points.values())  # type: ignore[attr-defined]


def _writers(session: object) -> dict[int, str]:
    return {
        pid: cmd
        for pid, cmd in _ray_processes(session.supervisor_pid).items()  # type: ignore[attr-defined]
        if cmd.startswith("ray::MapWorker") and "PointWriter" in cmd
    }


def _store_bytes(parent: Path) -> int:
    return sum(p.stat().st_size for p in parent.glob(".index.tmp-*/qdrant/collection/*/*.sqlite"))


# A few points' worth of the new store (a seeds point, with its token multivector, takes
# about 100 kB there; the empty collection a few kB).
SOME_POINTS = 300_000


def test_a_writer_killed_mid_upsert_fails_the_build_and_the_previous_index_serves(
    ray_qdrant: tuple[Path, BuildReport], ray_head: object, tmp_path: Path, embedder: object
) -> None:
    from rag.index.executors.ray_executor import RayBuildError
    from rag.index.manifest import Manifest
    from rag.pipeline import QA

    out = tmp_path / "index"
    shutil.copytree(ray_qdrant[0], out)
    previous = Manifest.load(out)
    corpus = _triple_seeds(tmp_path / "corpus")
    with (
        _Killer(ray_head, _writers, lambda: _store_bytes(tmp_path) > SOME_POINTS) as killer,
        pytest.raises(RayBuildError, match="index is untouched"),
    ):
        _ray_build(corpus, out, QDRANT, max_restarts=0, batch_size=8, use_cache=False)
    assert killer.killed is not None, "no writer actor was seen upserting"
    assert Manifest.load(out).build_id == previous.build_id
    # The new collection went with the staging folder; the previous one serves.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".index")] == []
    qa = QA.load(out, embedder=embedder)
    try:
        assert qa.index.backend.count() == 218  # type: ignore[attr-defined]
        result = qa.ask("Who is Nikita Smagin?")
    finally:
        qa.index.close()  # type: ignore[attr-defined]
    assert result.answer is not None and "Iran expert" in result.answer
    assert _wait_gone(list(_writers(ray_head))) == []


def test_a_writer_killed_mid_upsert_is_restarted_and_the_collection_is_complete(
    clean_env: None, ray_head: object, tmp_path: Path
) -> None:
    corpus = _triple_seeds(tmp_path / "corpus")
    with _Killer(ray_head, _writers, lambda: _store_bytes(tmp_path) > SOME_POINTS) as killer:
        report = _ray_build(corpus, tmp_path / "index", QDRANT, use_cache=False, batch_size=8)
    assert killer.killed is not None, "no writer actor was seen upserting"
    assert report.chunks == 654
    workers = _worker_writers(report)
    # The restarted writer is another process; it upserted the killed one's batch again.
    assert any(int(n.rsplit(":", 1)[1]) != killer.killed for n in workers), workers
    assert sum(workers.values()) == 654
    assert len(_points(tmp_path / "index")) == 654
    assert _wait_gone(list(_writers(ray_head))) == []
