"""scripts/answer_ceiling.py: the per-kind shares worked out by hand, and the script over
the real seeds index, where no scorer can beat the ceiling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag.answering import training
from scripts import answer_ceiling
from scripts.answer_ceiling import COLUMNS, main, shares, table

QUESTIONS = Path(answer_ceiling.DEFAULT_QUESTIONS)


def test_shares_count_each_question_once_per_kind_and_in_all() -> None:
    chosen = {
        "q1": training.Row("q1", 1, {}),
        "q2": training.Row("q2", 0, {}),
        "q3": training.Row("q3", 1, {}),
        "q4": training.Row("q4", 1, {}),
    }
    kinds = {"q1": "fact", "q2": "fact", "q3": "paraphrase", "q4": "fact"}
    assert shares(chosen, kinds) == {
        "all": {"n": 4, "share": 0.75},
        "fact": {"n": 3, "share": 0.6667},
        "paraphrase": {"n": 1, "share": 1.0},
    }


def test_table_has_a_line_per_kind_and_a_cell_per_column() -> None:
    result = {c: {"all": {"n": 2, "share": 0.5}} for c in COLUMNS}
    lines = table(result).splitlines()
    assert lines[0].split() == ["kind", "n", *COLUMNS]
    assert lines[1].split() == ["all", "2", *["0.500"] * len(COLUMNS)]


@pytest.mark.slow
def test_over_the_seeds_no_scorer_beats_the_ceiling(seed_index_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ceiling.json"
    assert main(["--index", str(seed_index_dir), "--half", "test", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert tuple(data["columns"]) == COLUMNS
    lines = QUESTIONS.read_text().splitlines()
    asked = [q for q in map(json.loads, filter(str.strip, lines)) if q.get("split") == "test"]
    expected: dict[str, int] = {}
    for q in asked:
        if q["gold"] and q["answer_any"]:
            expected[q["kind"]] = expected.get(q["kind"], 0) + 1
    ceiling = data["columns"]["ceiling"]
    assert {k: v["n"] for k, v in ceiling.items() if k != "all"} == expected
    assert ceiling["all"]["n"] == sum(expected.values())
    for column in COLUMNS:
        for kind, cell in data["columns"][column].items():
            assert cell["n"] == ceiling[kind]["n"]
            assert 0.0 <= cell["share"] <= ceiling[kind]["share"], (column, kind)


def test_a_set_without_answerable_questions_is_a_setup_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only_null = tmp_path / "null.jsonl"
    only_null.write_text(
        json.dumps({"id": "n", "question": "Who won?", "gold": [], "answer_any": None, "kind": "x"})
        + "\n"
    )
    assert (
        main(["--index", str(tmp_path / "none"), "--questions", str(only_null), "--half", "all"])
        == 2
    )
    assert "no answerable question with answer phrases" in capsys.readouterr().err


def test_a_missing_index_is_a_setup_error_that_says_how_to_build_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--index", str(tmp_path / "none"), "--half", "test"]) == 2
    assert "rag index" in capsys.readouterr().err
