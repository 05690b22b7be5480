"""Question analysis (rag/question.py): which answer type a question expects, what that
type matches in a passage, and which names a question mentions. Pure string work, no
model: exact expected values."""

from __future__ import annotations

import re

import pytest

from rag.question import (
    DATE,
    DURATION,
    NAME,
    NUMBER,
    PLACE,
    QUOTE,
    expected_answer,
    key_names,
    name_phrases,
)


@pytest.mark.parametrize(
    ("question", "expects"),
    [
        ("When did the protests in Iran begin?", DATE),
        ("WHEN?", DATE),
        ("What year was the treaty signed?", DATE),
        ("Which month was the vote?", DATE),
        ("How long did the war last?", DURATION),
        # "how long" is checked before "when": the first matching type decides.
        ("How long ago, and when?", DURATION),
        ("How many people died?", NUMBER),
        ("How much did it cost?", NUMBER),
        ("How old is Putin?", NUMBER),
        ("What percentage voted?", NUMBER),
        ("Who is Nikita Smagin?", NAME),
        ("who won?", NAME),
        ("Whose idea was it?", NAME),
        ("Where does Irina live?", PLACE),
        ("Which city hosted it?", PLACE),
        ("What did Putin say about Iran?", QUOTE),
        ("Give me the quote.", QUOTE),
        # No wh-word with a type: nothing expected (whole words only: "Whoever" is no "who").
        ("What is the capital of France?", None),
        ("Why did they protest?", None),
        ("Whoever said that?", None),
        ("Somewhere?", None),
    ],
)
def test_expected_answer_type(question: str, expects: re.Pattern[str] | None) -> None:
    assert expected_answer(question) is expects


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (DATE, "It began in late December 2025.", "December"),
        (DATE, "on Monday", "Monday"),
        (DATE, "two weeks ago", "ago"),
        # A time relative to the report.
        (DATE, "Araghchi reached out over the weekend", "weekend"),
        (DATE, "A Times report last week", "last week"),
        (DATE, "a week of protests", None),
        (DATE, "a population of 2025000", None),  # digits inside a number are no year
        (NUMBER, "dozens were hurt", "dozens"),
        (NUMBER, "at least 40 dead", "4"),
        (NUMBER, "nobody came", None),
        (DURATION, "for three decades", "decades"),
        (NAME, "said Nikita Smagin, an expert", "Nikita Smagin"),
        (NAME, "said the expert", None),
        (PLACE, "She lives in Tehran now.", "in Tehran"),
        (PLACE, "she lives in the city", None),
        (QUOTE, "“We will win,” he said.", "“"),
    ],
)
def test_what_each_answer_type_matches(
    pattern: re.Pattern[str], text: str, found: str | None
) -> None:
    match = pattern.search(text)
    assert (match.group(0) if match else None) == found


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("Who is Nikita Smagin?", ["nikita", "smagin"]),
        ("What did Gazprom earn in 2018?", ["gazprom", "2018"]),
        ("Where is Shiraz?", ["shiraz"]),
        # The first word is capitalised only because it comes first.
        ("Protests began where?", []),
        ("Who?", []),
        ("Was the 1,000 figure right for Iran-Iraq?", ["1", "000", "iran", "iraq"]),
    ],
)
def test_key_names_are_the_names_and_numbers_a_question_mentions(
    question: str, names: list[str]
) -> None:
    assert key_names(question) == names


@pytest.mark.parametrize(
    ("question", "phrases"),
    [
        # A run of capitalised words is one name.
        ("What did the United States tell Iran?", [("unit", "state"), ("iran",)]),
        # The lower-case parts of a hyphenated word are not the name.
        ("Why did Armenia leave the Russian-led bloc?", [("armenia",), ("russian",)]),
        ("Where did Bashar al-Assad go?", [("bashar",), ("assad",)]),
        ("How many S-400 systems were sold?", [("400",)]),
    ],
)
def test_name_phrases_keep_each_names_terms_together(question: str, phrases: list) -> None:
    assert name_phrases(question) == phrases
