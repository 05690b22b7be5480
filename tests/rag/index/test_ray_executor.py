"""The Ray executor: same index as the local build, the embedding cache, and builds
killed part-way (a worker, the driver) leaving the previous index serving and no Ray
process behind.

Ray is started once for the session (`ray_head`, conftest.py) and every build joins it;
only the driver-kill test starts its own local Ray, since what it checks is that a
killed driver's Ray goes away with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.chunker import chunk_document
from rag.config import ChunkerConfig, IndexConfig, PipelineConfig
from rag.corpus import Document, read_corpus
from rag.errors import CorpusError, RagError
from rag.index.executors import EXECUTORS, make_executor
from rag.index.executors.ray_cluster import resolve_address
from rag.index.executors.ray_executor import (
    _binary,
    _block,
    _chunk_from_json,
    _columns,
    _explain,
    chunk_batch,
    read_documents,
)
from rag.index.executors.ray_supervisor import descendants
from tests.conftest import ROOT, SEEDS

QUESTIONS = ROOT / "scripts" / "questions" / "seeds.jsonl"


# --- unit tests (no Ray, no model) -------------------------------------------------------


def test_resolve_address_prefers_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) is None
    assert resolve_address("10.0.0.5:6379") == "10.0.0.5:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.9:6379")
    assert resolve_address(None) == "10.0.0.9:6379"
    assert resolve_address("10.0.0.5:6379") == "10.0.0.5:6379"
    assert resolve_address("local") is None
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert resolve_address(None) is None


def test_unknown_executor_names_the_valid_choices() -> None:
    with pytest.raises(RagError, match="valid choices: local, ray"):
        make_executor("spark", PipelineConfig())
    assert EXECUTORS == ("local", "ray")


def test_read_and_chunk_stages_give_the_local_chunks(tmp_path: Path) -> None:
    docs = read_corpus(SEEDS)
    batch = {
        "source": np.asarray([d.source for d in docs], dtype=object),
        "sha256": np.asarray([d.sha256 for d in docs], dtype=object),
    }
    read = read_documents(batch, str(SEEDS))
    assert list(read["text"]) == [d.text for d in docs]
    chunked = chunk_batch(read, ChunkerConfig())
    expected = [c for d in docs for c in chunk_document(d, ChunkerConfig())]
    assert [_chunk_from_json(r) for r in chunked["chunk"]] == expected
    assert list(chunked["embedded"]) == [c.embedded for c in expected]


def test_read_stage_refuses_a_file_that_changed_since_the_driver_read_it(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("First version of the article.\n")
    batch = {
        "source": np.asarray(["a.txt"], dtype=object),
        "sha256": np.asarray(["0" * 64], dtype=object),
    }
    with pytest.raises(CorpusError, match=r"a\.txt changed while the index was being built"):
        read_documents(batch, str(tmp_path))
    with pytest.raises(CorpusError, match="every node of the cluster can read"):
        read_documents({**batch, "source": np.asarray(["gone.txt"], dtype=object)}, str(tmp_path))


def test_a_failed_pipeline_is_explained_by_its_first_project_error() -> None:
    inner = CorpusError("b.txt changed while the index was being built; run the build again")
    outer = RuntimeError("Ray wrapper\nTraceback ...\nray.exceptions.RayTaskError: boom")
    outer.__cause__ = inner
    assert _explain(outer) == str(inner)
    message = _explain(RuntimeError("line one\nThe actor died unexpectedly.\n"))
    assert message.startswith("the Ray build failed: The actor died unexpectedly.")
    assert "previous index is untouched" in message


# How Ray (2.x) reports an exception raised in a map actor: the worker's traceback as
# text, wrapped by Ray's own exception, and ending on Ray's advice about retries. The
# cause chain does not cross the process boundary.
_RAY_ACTOR_FAILURE = (
    "\x1b[36mray::MapWorker(MapBatches(A)).submit()\x1b[39m (pid=22150, ip=192.0.2.2)\n"
    '  File "/work/main/rag/index/executors/ray_writer.py", line 6, in __call__\n'
    '    raise OSError(28, "No space left on device")\n'
    "OSError: [Errno 28] No space left on device\n"
    "\n"
    "The above exception was the direct cause of the following exception:\n"
    "\n"
    "\x1b[36mray::MapWorker(MapBatches(A)).submit()\x1b[39m (pid=22150, ip=192.0.2.2)\n"
    "ray.exceptions.UserCodeException: UDF failed to process a data block.\n"
    "Failed to apply UDF transform after 1/1 attempts (total backoff 0.0s).\n"
    "To change retry attempts, backoff, or which errors are retried, configure "
    "`ray.data.DataContext.get_current()` if you believe this to be transient."
)


def test_a_worker_failure_is_explained_by_the_error_the_worker_raised() -> None:
    message = _explain(RuntimeError(_RAY_ACTOR_FAILURE))
    assert message.startswith("the Ray build failed: OSError: [Errno 28] No space left on device; ")
    assert "previous index is untouched" in message


def test_token_columns_travel_as_one_buffer_and_are_read_back_in_place() -> None:
    import pyarrow as pa

    tokens = [np.arange(8, dtype=np.float32).reshape(2, 4), None, np.full((3, 4), 0.5)]
    ids = [np.array([7, 8]), None, np.array([1, 2, 3])]
    spans = [np.array([[0, 3], [4, 9]]), None, np.array([[0, 1], [2, 5], [6, 7]])]
    column = _binary(tokens, np.float16)
    # One data buffer for the whole column: 8 + 0 + 12 float16 values.
    assert column.buffers()[2].size == 20 * 2
    assert [len(v) for v in column.to_pylist()] == [16, 0, 24]
    table = pa.table(
        {
            "chunk": pa.array(["a", "b", "c"]),
            "tokens": column,
            "token_ids": _binary(ids, np.int32),
            "token_spans": _binary(spans, np.int32),
            "vector": pa.array([1.0, 2.0, 3.0]),
        }
    )
    # A batch the driver gets can be a slice of one block and the start of the next.
    batch = _columns(pa.concat_tables([table.slice(2, 1), table.slice(0, 2)]))
    assert list(batch["chunk"]) == ["c", "a", "b"]
    assert batch["vector"].tolist() == [3.0, 1.0, 2.0]
    assert batch["tokens"][2].size == 0
    first, last = _block(batch, 1, 4), _block(batch, 0, 4)
    assert first.embeddings.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert first.ids.tolist() == [7, 8] and first.spans.tolist() == [[0, 3], [4, 9]]
    assert last.embeddings.dtype == np.float16 and last.embeddings.tolist() == [[0.5] * 4] * 3
    assert last.ids.tolist() == [1, 2, 3] and last.spans.tolist() == [[0, 1], [2, 5], [6, 7]]
    # Read in place: a row is a view of the column's buffer, not a copy.
    assert first.embeddings.ctypes.data == column.buffers()[2].address


# --- on Ray ----------------------------------------------------------------------------


def _ray_processes(root: int) -> dict[int, str]:
    """Descendants of `root` with their command lines (Ray names its workers ray::...)."""
    found = {}
    for pid in descendants(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                found[pid] = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def _wait_gone(pids: list[int], timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def _embedder_actors(session: object) -> dict[int, str]:
    return {
        pid: cmd
        for pid, cmd in _ray_processes(session.supervisor_pid).items()  # type: ignore[attr-defined]
        if cmd.startswith("ray::MapWorker") and "ChunkEmbedder" in cmd
    }


def _ray_build(corpus: Path, out: Path, config: PipelineConfig | None = None, **kw: object):
    from rag.index import build_index
    from rag.index.executors.ray_executor import RayConfig, RayExecutor

    config = config or PipelineConfig()
    use_cache = kw.pop("use_cache", True)
    executor = RayExecutor(config.embedder, RayConfig(**kw), progress=False)  # type: ignore[arg-type]
    return build_index(corpus, out, config, executor=executor, use_cache=use_cache)


def _rows(index: Path) -> list[dict]:
    with (index / "chunks.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _vectors(index: Path) -> tuple[np.ndarray, list[np.ndarray]]:
    from rag.index.backend import open_backend
    from rag.index.manifest import Manifest

    backend = open_backend(index, Manifest.load(index))
    try:
        records = backend.fetch([r["id"] for r in _rows(index)], tokens=True)
        return np.stack([r.vector for r in records]), [r.tokens for r in records]
    finally:
        backend.close()


def _answers(index: Path, embedder: object) -> list[dict]:
    from rag.pipeline import QA

    qa = QA.load(index, embedder=embedder)
    with QUESTIONS.open(encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for line in fh if line.strip()]
    out = []
    for q in questions:
        result = qa.ask(q, 10).to_dict()
        out.append(
            {
                "answer": result["answer"],
                "answer_source": result["answer_source"],
                "citations": [
                    (c["source"], c["paragraph"], c["start"], c["end"]) for c in result["citations"]
                ],
            }
        )
    return out


@pytest.fixture(scope="module")
def seeds_ray_index(ray_head: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ray-seeds") / "index"
    report = _ray_build(SEEDS, out)
    assert (report.embedded, report.reused) == (report.chunks, 0)
    return out


@pytest.mark.slow
def test_ray_build_of_the_seeds_is_the_local_index(
    seeds_ray_index: Path, seed_index_dir: Path, embedder: object
) -> None:
    from rag.index.manifest import Manifest

    local, ray_ = Manifest.load(seed_index_dir), Manifest.load(seeds_ray_index)
    assert (local.executor, ray_.executor) == ("local", "ray")
    assert ray_.counts == local.counts and ray_.sources == local.sources
    assert ray_.model.document_precision == local.model.document_precision
    # Same chunks: ids, offsets, texts, contexts, sentences, keys, duplicates, links.
    assert _rows(seeds_ray_index) == _rows(seed_index_dir)
    for name in ("documents.jsonl", "chunks.jsonl", "token_ids.npy", "token_spans.npy"):
        assert ray_.files[name] == local.files[name], name
    lv, lt = _vectors(seed_index_dir)
    rv, rt = _vectors(seeds_ray_index)
    assert np.abs(lv - rv).max() < 1e-3
    assert min(float(a @ b) for a, b in zip(lv, rv, strict=True)) > 0.9999
    assert (
        max(
            float(np.abs(a.astype(np.float32) - b.astype(np.float32)).max())
            for a, b in zip(lt, rt, strict=True)
        )
        < 1e-2
    )
    # The same answers, with the same citations, to every question of the seeds set.
    assert _answers(seeds_ray_index, embedder) == _answers(seed_index_dir, embedder)


@pytest.mark.slow
def test_rebuild_reuses_every_vector(seeds_ray_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "index"
    shutil.copytree(seeds_ray_index, out)
    before = _vectors(out)[0]
    kept = _ray_build(SEEDS, out)
    assert kept.unchanged and (kept.embedded, kept.reused) == (0, kept.chunks)
    # Another duplicate threshold: the index is rebuilt through the pipeline, every
    # encoding taken from the previous index.
    config = PipelineConfig(index=replace(IndexConfig(), duplicate_jaccard=0.7))
    report = _ray_build(SEEDS, out, config)
    assert not report.unchanged
    assert (report.embedded, report.reused) == (0, report.chunks)
    assert np.array_equal(_vectors(out)[0], before)


@pytest.mark.slow
def test_a_changed_file_re_embeds_only_its_new_chunks(
    seeds_ray_index: Path, tmp_path: Path, embedder: object
) -> None:
    from rag.index import build_index

    corpus = _seeds_with_a_new_paragraph(tmp_path / "corpus")
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    shutil.copytree(seeds_ray_index, ray_out)
    shutil.copytree(seeds_ray_index, local_out)
    ray_report = _ray_build(corpus, ray_out)
    local_report = build_index(corpus, local_out, PipelineConfig(), embedder=embedder)
    assert 0 < ray_report.embedded == local_report.embedded < ray_report.chunks
    assert ray_report.reused == local_report.reused == ray_report.chunks - ray_report.embedded
    assert _rows(ray_out) == _rows(local_out)


@pytest.mark.slow
def test_ray_build_into_qdrant_has_the_local_chunks_and_reuses_them(
    ray_head: object, seed_index_dir: Path, tmp_path: Path
) -> None:
    from rag.index.backend import open_backend
    from rag.index.manifest import Manifest

    out = tmp_path / "index"
    config = PipelineConfig(index=replace(IndexConfig(), backend="qdrant"))
    first = _ray_build(SEEDS, out, config)
    manifest = Manifest.load(out)
    assert (manifest.backend.kind, manifest.executor) == ("qdrant", "ray")
    ids = [r["id"] for r in _rows(seed_index_dir)]
    backend = open_backend(out, manifest)
    try:
        records = backend.fetch(ids)
        assert backend.count() == len(ids) == first.chunks
    finally:
        backend.close()
    local = open_backend(seed_index_dir, Manifest.load(seed_index_dir))
    try:
        expected = local.fetch(ids)
    finally:
        local.close()
    assert [r.chunk for r in records] == [r.chunk for r in expected]
    assert [r.key for r in records] == [r.key for r in expected]
    # Rebuilt with another duplicate threshold: every encoding comes from the collection.
    changed = replace(config, index=replace(config.index, duplicate_jaccard=0.7))
    again = _ray_build(SEEDS, out, changed)
    assert (again.embedded, again.reused) == (0, again.chunks)


@pytest.mark.slow
def test_rag_index_executor_ray_joins_the_cluster_it_is_given(
    ray_head: object, tmp_path: Path
) -> None:
    from rag.index.manifest import Manifest

    out = tmp_path / "index"
    address = ray_head.address  # type: ignore[attr-defined]
    command = [sys.executable, "-m", "rag", "index", "--corpus", str(SEEDS), "--out", str(out)]
    done = subprocess.run(
        [*command, "--executor", "ray", "--ray-address", address],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(embedded 218 texts, reused 0 cached vectors)" in done.stdout
    cpus = ray_head.cpus  # type: ignore[attr-defined]
    assert f"embedded on the Ray cluster at {address} ({cpus:g} CPUs" in done.stdout
    assert Manifest.load(out).executor == "ray"
    again = subprocess.run(
        [*command, "--executor", "ray"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "kept as it is, nothing embedded" in again.stdout


def test_ray_address_without_the_ray_executor_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    assert main(["index", "--out", str(tmp_path / "i"), "--ray-address", "h:1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --ray-address needs --executor ray"
    assert not (tmp_path / "i").exists()


NEW_PARAGRAPH = "An entirely new closing paragraph, written for this test only.\n"


def _seeds_with_a_new_paragraph(folder: Path) -> Path:
    """The seeds with NEW_PARAGRAPH added at the end of the first file."""
    shutil.copytree(SEEDS, folder)
    first = sorted(folder.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8") + NEW_PARAGRAPH, encoding="utf-8")
    return folder


def _triple_seeds(folder: Path) -> Path:
    """The seeds three times over (654 chunks), so a build lasts long enough to kill."""
    folder.mkdir()
    for copy in range(3):
        for src in sorted(SEEDS.iterdir()):
            (folder / f"{copy}_{src.name}").write_bytes(src.read_bytes())
    return folder


class _Killer(threading.Thread):
    """Kills the first process of `find()` seen running a batch (a Ray actor whose name
    ends in ".submit"), once `ready()`: by default the first embedding actor, its model
    loaded."""

    def __init__(
        self,
        session: object,
        find: Callable[[object], dict[int, str]] | None = None,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(daemon=True)
        self.session = session
        self.find = find or _embedder_actors
        self.ready = ready
        self.killed: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.ready():
                for pid, cmd in self.find(self.session).items():
                    if ".submit" in cmd:
                        os.kill(pid, signal.SIGKILL)
                        self.killed = pid
                        return
            time.sleep(0.02)

    def __enter__(self) -> _Killer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


@pytest.mark.slow
def test_a_worker_killed_mid_build_fails_it_and_the_previous_index_serves(
    ray_head: object, seeds_ray_index: Path, tmp_path: Path, embedder: object
) -> None:
    from rag.index.executors.ray_executor import RayBuildError
    from rag.index.manifest import Manifest
    from rag.pipeline import QA

    out = tmp_path / "index"
    shutil.copytree(seeds_ray_index, out)
    build_id = Manifest.load(out).build_id
    corpus = _triple_seeds(tmp_path / "corpus")
    with _Killer(ray_head) as killer, pytest.raises(RayBuildError, match="index is untouched"):
        _ray_build(corpus, out, max_restarts=0, batch_size=8)
    assert killer.killed is not None, "no embedding actor was seen running a batch"
    assert Manifest.load(out).build_id == build_id
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".index")] == []
    result = QA.load(out, embedder=embedder).ask("Who is Nikita Smagin?")
    assert result.answer is not None and "Iran expert" in result.answer
    # The failed build's actors are gone (the session's own processes stay until it ends).
    assert _wait_gone(list(_embedder_actors(ray_head))) == []


@pytest.mark.slow
def test_a_worker_killed_mid_build_is_restarted_and_the_index_is_complete(
    ray_head: object, tmp_path: Path, embedder: object
) -> None:
    from rag.index import build_index

    corpus = _triple_seeds(tmp_path / "corpus")
    with _Killer(ray_head) as killer:
        report = _ray_build(corpus, tmp_path / "ray", use_cache=False, batch_size=8)
    assert killer.killed is not None, "no embedding actor was seen running a batch"
    assert report.chunks == report.embedded + report.reused == 654
    build_index(corpus, tmp_path / "local", PipelineConfig(), embedder=embedder)
    # Every copy of a text is a duplicate of the others at cosine 1.0, so which of them
    # fill a chunk's ten nearest neighbours turns on the last bit of the vectors: the
    # duplicate lists are left out here (the seeds test compares them).
    ray_rows, local_rows = _rows(tmp_path / "ray"), _rows(tmp_path / "local")
    for row in (*ray_rows, *local_rows):
        del row["duplicates"]
    assert ray_rows == local_rows
    lv, rv = _vectors(tmp_path / "local")[0], _vectors(tmp_path / "ray")[0]
    assert min(float(a @ b) for a, b in zip(lv, rv, strict=True)) > 0.9999
    assert _wait_gone(list(_embedder_actors(ray_head))) == []


def _niceness(pid: int) -> int | None:
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except ProcessLookupError:  # it ended between the listing and the look
        return None


@pytest.mark.slow
def test_the_embedding_actor_runs_at_a_local_builds_priority(
    ray_head: object, tmp_path: Path
) -> None:
    # Ray starts its workers at niceness 15; an embedding actor left there loses its
    # cores to the driver and Ray's daemons (docs/scaling.md). Seen while it embeds.
    seen: dict[int, int | None] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for pid, cmd in _embedder_actors(ray_head).items():
                if ".submit" in cmd:
                    seen[pid] = _niceness(pid)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _ray_build(SEEDS, tmp_path / "index", use_cache=False, batch_size=8)
    finally:
        stop.set()
        watcher.join()
    assert seen, "no embedding actor was seen running a batch"
    assert set(seen.values()) == {os.getpriority(os.PRIO_PROCESS, 0)}


_DRIVER = """
import sys
from pathlib import Path
from rag.runtime import configure
configure()
from rag.config import PipelineConfig
from rag.index import build_index
from rag.index.executors.ray_executor import RayConfig, RayExecutor
config = PipelineConfig()
executor = RayExecutor(config.embedder, RayConfig(batch_size=8, local_cpus=2), progress=False)
build_index(Path(sys.argv[1]), Path(sys.argv[2]), config, executor=executor, use_cache=False)
"""


@pytest.mark.slow
def test_a_killed_driver_leaves_the_previous_index_and_no_ray_process(
    seeds_ray_index: Path, tmp_path: Path, embedder: object
) -> None:
    from rag.index.manifest import Manifest
    from rag.pipeline import QA

    out = tmp_path / "index"
    shutil.copytree(seeds_ray_index, out)
    build_id = Manifest.load(out).build_id
    corpus = _triple_seeds(tmp_path / "corpus")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    driver = subprocess.Popen(
        [sys.executable, "-c", _DRIVER, str(corpus), str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and driver.poll() is None:
            procs = _ray_processes(driver.pid)
            seen.update(procs)
            if any(c.startswith("ray::MapWorker") and ".submit" in c for c in procs.values()):
                break
            time.sleep(0.05)
        assert driver.poll() is None, "the build ended before an embedding actor ran"
        seen.update(_ray_processes(driver.pid))
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert any(c.startswith("ray::") for c in seen.values())
    assert any("raylet" in c for c in seen.values())
    left = _wait_gone(list(seen))
    assert left == [], {p: seen[p] for p in left}
    assert Manifest.load(out).build_id == build_id
    result = QA.load(out, embedder=embedder).ask("Who is Nikita Smagin?")
    assert result.answer is not None and "Iran expert" in result.answer


def test_documents_of_the_seeds_read_as_the_corpus_reads_them() -> None:
    # The stage reads bytes and decodes them with the corpus reader's own rules.
    doc = read_corpus(SEEDS)[0]
    read = read_documents(
        {
            "source": np.asarray([doc.source], dtype=object),
            "sha256": np.asarray([doc.sha256], dtype=object),
        },
        str(SEEDS),
    )
    assert Document(doc.source, str(read["text"][0]), doc.sha256) == doc
