"""scripts/bench.py at tiny sizes, every section, so the benchmark cannot rot.

The bench runs once (a module fixture): every registered section, with the options its
module gives for a quick run (SMOKE_ARGS); each test then checks one claim of the JSON.
Timings are never asserted, since these machines are shared and noisy; what is knowable
is: no request fails, the index holds exactly the chunks the chunker makes of the corpus,
an incremental rebuild re-embeds only the file that changed and keeps chunk records,
dense and sparse indexes in step, and exact (flat) search finds the true top 10.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.chunker import chunk_documents
from rag.config import PipelineConfig
from rag.corpus import read_corpus
from scripts.benchmarks.cli import SECTIONS as REGISTRY
from scripts.benchmarks.rebuild import NEW_FILE, NEW_NAME
from tests.servers import ROOT

pytestmark = pytest.mark.slow
# Minutes on a quiet machine; far longer when the cores are shared by many runs.
TIMEOUT_S = 1800
NUMBER = (int, float)
SECTIONS = set(REGISTRY)


def _number(value: object) -> bool:
    return isinstance(value, NUMBER) and not isinstance(value, bool)


def _chunk_count(folder: Path) -> int:
    """Chunks the chunker makes of a folder: what an index over it must hold."""
    return len(chunk_documents(read_corpus(folder), PipelineConfig().chunker))


@dataclass
class Run:
    data: dict
    stdout: str
    corpus: Path
    work: Path

    @property
    def sections(self) -> dict:
        return self.data["sections"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    tmp = tmp_path_factory.mktemp("bench")
    corpus = tmp / "corpus"
    corpus.mkdir()
    for path in sorted((ROOT / "seeds").iterdir())[:2]:
        shutil.copy(path, corpus / path.name)
    out = tmp / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "bench.py"),
        "--corpus", str(corpus),
        "--max-questions", "5",
        "--build-repeats", "1",
        "--workdir", str(tmp / "work"),
        "--out", str(out),
    ]  # fmt: skip
    for section in REGISTRY.values():
        cmd += getattr(section, "SMOKE_ARGS", ())
    # A process group of its own, so that a timeout stops the bench and all it started.
    bench = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = bench.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGKILL)
        stdout, stderr = bench.communicate()
        pytest.fail(f"the bench did not finish in {TIMEOUT_S} s:\n{stderr[-4000:]}")
    assert out.is_file(), stderr[-4000:]
    data = json.loads(out.read_text())
    # Exit status 1 means a section failed: the tests below name which and why.
    assert bench.returncode in (0, 1), stderr[-4000:]
    return Run(data, stdout, corpus, tmp / "work")


def test_every_section_runs_and_prints_its_rows(run: Run) -> None:
    errors = {name: s["error"] for name, s in run.sections.items() if "error" in s}
    assert not errors
    assert set(run.sections) == SECTIONS
    assert run.data["table"] in run.stdout
    body = run.data["table"].splitlines()[4:]  # machine, versions, header, rule
    assert {line.split(" | ")[0].strip() for line in body} == SECTIONS
    machine = run.data["machine"]
    assert isinstance(machine["cores"], int) and isinstance(machine["cpu"], str)
    assert isinstance(run.data["versions"]["torch"], str)


def test_latency_figures_and_breakdown(run: Run) -> None:
    lat = run.sections["latency"]
    for key in ("reference_encode_ms", "http_ask_ms", "inprocess_ask_ms"):
        assert _number(lat[key]["p50"]) and _number(lat[key]["p95"])
    assert _number(lat["ratio_p50"]) and isinstance(lat["met"], bool)
    steps = lat["breakdown_p50_ms"]  # through QA's public steps
    assert set(steps) == {
        "encode (QA.encode)",
        "retrieve",
        "answer (extract + citations)",
        "http + server overhead",
    }
    assert all(_number(v) for v in steps.values())


def test_no_request_fails(run: Run) -> None:
    assert run.sections["latency"]["http_errors"] == 0
    thr = run.sections["throughput"]
    assert [lv["clients"] for lv in thr["levels"]] == [1, 2]  # throughput.SMOKE_ARGS
    assert [lv["errors"] for lv in thr["levels"]] == [0, 0]
    assert thr["errors"] == 0


def test_throughput_figures(run: Run) -> None:
    thr = run.sections["throughput"]
    for level in thr["levels"]:
        for key in ("rps", "p50_ms", "p95_ms", "server_cpu_ms_per_request"):
            assert _number(level[key])
        # every request went through the micro-batcher, whose log the bench counts
        assert sum(int(n) * c for n, c in level["batch_sizes"].items()) == level["requests"]
    assert _number(thr["speedup_top_vs_1"]) and isinstance(thr["met"], bool)
    assert _number(thr["cpu_ceiling_rps"]) and _number(thr["cpu_ceiling_vs_1"])
    assert thr["sharing"]["batch_size"] == 2  # the top client level
    for name in ("bare", "server"):
        costs = thr["sharing"][name]
        for key in ("alone_wall_ms", "alone_cpu_ms", "shared_wall_ms", "shared_cpu_ms"):
            assert _number(costs[key]) and costs[key] > 0, (name, key)
        assert costs["cpu_saved"] == round(1 - costs["shared_cpu_ms"] / costs["alone_cpu_ms"], 3)


def test_index_holds_exactly_the_corpus_chunks(run: Run) -> None:
    build = run.sections["build"]
    for key in (
        "build_s",
        "reference_chunk_texts_s",
        "reference_embedded_texts_s",
        "ratio_vs_chunk_texts",
        "ratio_vs_embedded_texts",
        "cli_peak_rss_mb",
    ):
        assert _number(build[key]), key
    chunks = _chunk_count(run.corpus)
    assert build["documents"] == 2
    assert build["chunks"] == chunks and build["texts_embedded"] >= chunks
    assert run.sections["startup"]["index_chunks"] == chunks


def test_rebuild_reembeds_one_file_and_stays_consistent(run: Run, tmp_path: Path) -> None:
    rebuild = run.sections["rebuild"]
    assert _number(rebuild["unchanged_pct_of_full"])
    assert rebuild["unchanged_embedded"] == 0
    assert [s["step"] for s in rebuild["steps"]] == ["add", "change", "delete"]
    for step in rebuild["steps"]:
        assert step["consistent"] is True, step
        assert step["dense_count"] == step["sparse_count"] == step["chunks"], step
        assert step["only_that_file"] is True, step
    add, change, delete = rebuild["steps"]
    assert add["query_finds_it"] is True and add["top_source"] == NEW_NAME
    assert delete["query_finds_it"] is True and delete["top_source"] != NEW_NAME
    assert rebuild["met_incremental"] is True
    # The chunks each state of the corpus must give: the new file alone, and the corpus
    # as the bench leaves it (one file changed, the new one deleted again).
    (tmp_path / NEW_NAME).write_text(NEW_FILE, encoding="utf-8")
    new_chunks = _chunk_count(tmp_path)
    final_chunks = _chunk_count(run.work / "rebuild-corpus")
    assert add["file_chunks_after"] == new_chunks and add["embedded"] == new_chunks
    assert [add["chunks"], change["chunks"], delete["chunks"]] == [
        _chunk_count(run.corpus) + new_chunks,
        final_chunks + new_chunks,
        final_chunks,
    ]


def test_scale_rows_and_exact_search_recall(run: Run) -> None:
    scale = run.sections["scale"]
    assert [row["n"] for row in scale["dense"]] == [1000, 2000]  # scale.SMOKE_ARGS
    for row in scale["dense"]:
        for kind in ("flat", "hnsw"):
            assert _number(row[kind]["search_p50_ms"]) and _number(row[kind]["recall_at_10"])
            assert _number(row[kind]["build_s"]) and _number(row[kind]["bytes_per_vector"])
        assert row["flat"]["recall_at_10"] == 1.0  # exact search against brute force
        assert 0 < row["hnsw"]["recall_at_10"] <= 1.0
    assert [row["n"] for row in scale["sparse"]] == [2000]
    assert _number(scale["sparse"][0]["query_p50_ms"]) and _number(scale["sparse"][0]["build_s"])
    assert isinstance(scale["auto_hnsw_min"], int)


def test_startup_figures(run: Run) -> None:
    startup = run.sections["startup"]
    assert _number(startup["to_first_answer_s"]) and _number(startup["rss_at_rest_mb"])


def test_qdrant_engine_and_late_interaction(run: Run) -> None:
    qdrant = run.sections["qdrant"]
    assert qdrant["points"] == 2000 and qdrant["late"]["points"] == 200  # qdrant.SMOKE_ARGS
    # 2,000 points are below Qdrant's indexing threshold: its search is exact.
    assert qdrant["engine"]["dense_recall_at_10"] == 1.0
    late = qdrant["late"]
    assert _number(late["maxsim_inside_p50_ms"]) and _number(late["maxsim_here_p50_ms"])
    # Token embeddings on disk: float16, 384 of them per token, and some slack at most.
    per_token = late["tokens_disk_bytes_per_point"] / late["tokens_per_chunk"]
    assert 768 <= per_token <= 1.2 * 768


def test_executors_build_the_corpus_chunks_on_both(run: Run) -> None:
    figures = run.sections["executors"]["corpus"]
    chunks = _chunk_count(run.corpus)
    assert figures["chunks"] == chunks
    for executor in ("local", "ray"):
        built = figures[executor]
        assert built["chunks"] == built["embedded"] == chunks
        assert _number(built["build_s"]) and built["peak_pss_mb"] > 0
    # Ray's start-up is part of its build time, reported apart.
    ray = figures["ray"]
    assert 0 < ray["ray_startup_s"] < ray["build_s"] and ray["ray_cpus"] >= 1
    assert ray["processes_at_peak"] > figures["local"]["processes_at_peak"]
