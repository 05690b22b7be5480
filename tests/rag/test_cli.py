"""The `rag` console script, run as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import rag

pytestmark = pytest.mark.slow


def test_ask_prints_the_answer_and_its_source(seed_index_dir: Path) -> None:
    proc = rag("ask", "Who is Nikita Smagin?", "--index", str(seed_index_dir))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Nikita Smagin, a former Russian diplomat and leading Iran expert")
    assert lines[1].startswith("  — 000_7144c9d64f512035.txt ¶4 [661:")
    assert "Sources:" in proc.stdout


def test_ask_json_matches_the_api_contract(seed_index_dir: Path, qa) -> None:
    question = "Who won the 2018 FIFA World Cup?"
    proc = rag("ask", question, "--index", str(seed_index_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert body == qa.ask(question).to_dict()
    assert body["answer"] is None


def test_index_if_stale_skips_an_up_to_date_index(seed_index_dir: Path) -> None:
    proc = rag("index", "--corpus", "seeds", "--out", str(seed_index_dir), "--if-stale")
    assert proc.returncode == 0, proc.stderr
    assert "up to date" in proc.stdout


def test_errors_are_one_line_with_the_fix(tmp_path: Path) -> None:
    proc = rag("ask", "Anything?", "--index", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no index at")
    assert "rag index" in proc.stderr and "Traceback" not in proc.stderr
