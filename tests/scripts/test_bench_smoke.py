"""scripts/bench.py at tiny sizes, every section, so the benchmark cannot rot.

Only the shape of its JSON is checked: the figures themselves are never asserted, since
these machines are shared and noisy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import ROOT

NUMBER = (int, float)


def _number(value: object) -> bool:
    return isinstance(value, NUMBER) and not isinstance(value, bool)


@pytest.mark.slow
def test_bench_runs_every_section_at_tiny_sizes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in sorted((ROOT / "seeds").iterdir())[:2]:
        shutil.copy(path, corpus / path.name)
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "bench.py"),
        "--corpus", str(corpus),
        "--max-questions", "5",
        "--rounds", "1",
        "--clients", "1,2",
        "--requests", "12",
        "--build-repeats", "1",
        "--scale-sizes", "1000,2000",
        "--scale-queries", "20",
        "--ef-search", "16",
        "--bm25-sizes", "2000",
        "--qdrant-points", "2000",
        "--qdrant-token-points", "200",
        "--qdrant-queries", "10",
        "--workdir", str(tmp_path / "work"),
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "section" in done.stdout  # the table was printed

    data = json.loads(out.read_text())
    machine = data["machine"]
    assert isinstance(machine["cores"], int) and isinstance(machine["cpu"], str)
    assert isinstance(data["versions"]["torch"], str)
    sections = data["sections"]
    assert set(sections) == {
        "latency", "throughput", "build", "rebuild", "scale", "startup", "qdrant"
    }  # fmt: skip
    for name, section in sections.items():
        assert "error" not in section, (name, section.get("error"))

    lat = sections["latency"]
    for key in ("reference_encode_ms", "http_ask_ms", "inprocess_ask_ms"):
        assert _number(lat[key]["p50"]) and _number(lat[key]["p95"])
    assert _number(lat["ratio_p50"]) and isinstance(lat["met"], bool)
    assert lat["breakdown_p50_ms"] is None or all(
        _number(v) for v in lat["breakdown_p50_ms"].values()
    )

    thr = sections["throughput"]
    assert [lv["clients"] for lv in thr["levels"]] == [1, 2]
    for level in thr["levels"]:
        for key in ("rps", "p50_ms", "p95_ms", "server_cpu_ms_per_request"):
            assert _number(level[key])
        assert isinstance(level["errors"], int) and isinstance(level["batch_sizes"], dict)
    assert _number(thr["speedup_top_vs_1"]) and isinstance(thr["met"], bool)
    assert _number(thr["cpu_ceiling_rps"]) and _number(thr["cpu_ceiling_vs_1"])
    assert thr["sharing"]["batch_size"] == 2  # the top client level
    for name in ("bare", "server"):
        costs = thr["sharing"][name]
        for key in ("alone_wall_ms", "alone_cpu_ms", "shared_wall_ms", "shared_cpu_ms"):
            assert _number(costs[key]) and costs[key] > 0, (name, key)
        assert costs["cpu_saved"] == round(1 - costs["shared_cpu_ms"] / costs["alone_cpu_ms"], 3)

    build = sections["build"]
    for key in (
        "build_s",
        "reference_chunk_texts_s",
        "reference_embedded_texts_s",
        "ratio_vs_chunk_texts",
        "ratio_vs_embedded_texts",
        "cli_peak_rss_mb",
    ):
        assert _number(build[key]), key
    assert build["chunks"] > 0 and build["texts_embedded"] >= build["chunks"]

    rebuild = sections["rebuild"]
    assert _number(rebuild["unchanged_pct_of_full"])
    assert [s["step"] for s in rebuild["steps"]] == ["add", "change", "delete"]
    for step in rebuild["steps"]:
        assert isinstance(step["embedded"], int) and isinstance(step["consistent"], bool)

    scale = sections["scale"]
    assert [row["n"] for row in scale["dense"]] == [1000, 2000]
    for row in scale["dense"]:
        for kind in ("flat", "hnsw"):
            assert _number(row[kind]["search_p50_ms"]) and _number(row[kind]["recall_at_10"])
            assert _number(row[kind]["build_s"]) and _number(row[kind]["bytes_per_vector"])
    assert [row["n"] for row in scale["sparse"]] == [2000]
    assert _number(scale["sparse"][0]["query_p50_ms"]) and _number(scale["sparse"][0]["build_s"])
    assert isinstance(scale["auto_hnsw_min"], int)

    startup = sections["startup"]
    assert _number(startup["to_first_answer_s"]) and _number(startup["rss_at_rest_mb"])

    qdrant = sections["qdrant"]
    assert qdrant["points"] == 2000 and qdrant["late"]["points"] == 200
    # 2,000 points are below Qdrant's indexing threshold: its search is exact.
    assert qdrant["engine"]["dense_recall_at_10"] == 1.0
    late = qdrant["late"]
    assert _number(late["maxsim_inside_p50_ms"]) and _number(late["maxsim_here_p50_ms"])
    # Token embeddings on disk: float16, 384 of them per token, and some slack at most.
    per_token = late["tokens_disk_bytes_per_point"] / late["tokens_per_chunk"]
    assert 768 <= per_token <= 1.2 * 768
