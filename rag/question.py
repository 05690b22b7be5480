"""Question analysis: what the retriever and answerer need to know about a question.

Entry point: `analyse(text, encoded)`. Everything here is cheap string work on top of
the one forward pass that produced `encoded`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.embedder import EncodedQuestion
from rag.text import tokenize

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
# A year, its decade ("the early 1920s") or its century ("the 20th century"); a time
# relative to the report ("over the weekend", "last week").
DATE = re.compile(
    rf"\b(?:{_MONTHS}|{_DAYS}|(?:1[89]|20)\d(?:\d|0s)|\d\d?(?:st|nd|rd|th)[ -]century"
    r"|yesterday|ago|weekend|(?:last|next|this)\s+(?:week|month|year))\b"
)
# Dates of one granularity, for "On what date / which day", "In which month", "In what
# year": a year alone does not say on what date; a weekday or "3 January" does.
DAY = re.compile(
    rf"\b(?:(?:{_MONTHS})\s+\d{{1,2}}|\d{{1,2}}\s+(?:{_MONTHS})|{_DAYS}|yesterday|today)\b"
    r"|\b(?:19|20)\d\d-\d\d-\d\d\b"
)
MONTH = re.compile(rf"\b(?:{_MONTHS}|(?:last|next|this)\s+month)\b")
YEAR = re.compile(r"\b(?:(?:1[89]|20)\d\d|(?:last|next|this)\s+year)\b")
# A month or a year by name or number, to compare the question's with a sentence's.
MONTH_NAME = re.compile(rf"\b(?:{_MONTHS})\b")
YEAR_NUMBER = re.compile(r"\b(?:1[89]|20)\d\d\b")
NUMBER = re.compile(
    r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|thousands?"
    r"|millions?|billions?)\b",
    re.I,
)
DURATION = re.compile(r"\b(?:days?|weeks?|months?|years?|decades?|centur(?:y|ies)|hours?)\b", re.I)
NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z.]+)+")
PLACE = re.compile(r"\b(?:in|at|from|to|into|near)\s+(?:the\s+)?[A-Z][a-z]+")
QUOTE = re.compile(r"[“\"]")

# Checked in order: the first that matches the question decides.
_ANSWER_TYPES: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"\bhow long\b", re.I), DURATION),
    (
        re.compile(
            r"\bwhen\b|\bwhat (?:date|day|year|month)\b|\bwhich (?:date|day|year|month)\b", re.I
        ),
        DATE,
    ),
    (re.compile(r"\bhow (?:many|much|old)\b|\bwhat (?:number|share|percentage)\b", re.I), NUMBER),
    (re.compile(r"\bwho\b|\bwhose\b|\bwhom\b", re.I), NAME),
    (re.compile(r"\bwhere\b|\bwhich (?:city|country|province|region|place)\b", re.I), PLACE),
    (re.compile(r"\bwhat did .+ (?:say|write|tell|warn|call|add)\b|\bquote\b", re.I), QUOTE),
]


def expected_answer(question: str) -> re.Pattern[str] | None:
    """A pattern that text answering the question is likely to contain, from its wh-word."""
    for asks, answer in _ANSWER_TYPES:
        if asks.search(question):
            return answer
    return None


# A capitalised word (a name, mostly) or a number inside a question. The question's first
# word is capitalised only because it comes first.
_NAME_WORD = re.compile(r"(?<=[\s(“\"'‘-])(?:[A-Z][\w’'.-]*|\d[\d,.]*)")


def key_names(question: str) -> list[str]:
    """BM25 terms of the names and numbers a question mentions ("Gazprom", "Shiraz",
    "2018"): when the corpus holds none of a name's terms, it cannot answer."""
    words = _NAME_WORD.findall(" " + question.split(" ", 1)[1] if " " in question else "")
    return list(dict.fromkeys(t for w in words for t in tokenize(w)))


def name_phrases(question: str) -> list[tuple[str, ...]]:
    """The terms of each name the question mentions, a run of capitalised words being
    one name ("United States" -> ("unit", "state")): an article that holds any term of a
    name mentions it ("the US ... state media" is no proof, but "China" absent is)."""
    rest = " " + question.split(" ", 1)[1] if " " in question else ""
    phrases: list[tuple[str, ...]] = []
    for run in re.finditer(rf"{_NAME_WORD.pattern}(?:\s+(?:[A-Z][\w’'.-]*|\d[\d,.]*))*", rest):
        # The lower-case parts of a hyphenated word are not the name: "Russian-led"
        # names Russia ("led" is no name to look for), "al-Assad" Assad.
        parts = re.split(r"[\s-]+", run.group(0))
        named = " ".join(p for p in parts if p[:1].isupper() or p[:1].isdigit())
        terms = tuple(dict.fromkeys(tokenize(named)))
        if terms and terms not in phrases:
            phrases.append(terms)
    return phrases


@dataclass(frozen=True)
class Question:
    text: str
    vector: np.ndarray  # pooled, normalised
    tokens: np.ndarray  # content word-piece embeddings, normalised
    token_ids: np.ndarray
    terms: list[str]  # BM25 terms
    expects: re.Pattern[str] | None
    # Terms of the names and numbers the question mentions (`key_names`).
    names: list[str]
    # Cosines of `tokens` with every token of the index, when computed for a batch.
    token_sims: np.ndarray | None = None
    # The same names, the terms of each kept together (`name_phrases`).
    phrases: tuple[tuple[str, ...], ...] = ()


def analyse(text: str, encoded: EncodedQuestion, token_sims: np.ndarray | None = None) -> Question:
    return Question(
        text=text,
        vector=encoded.vector,
        tokens=encoded.tokens,
        token_ids=encoded.ids,
        terms=tokenize(text),
        expects=expected_answer(text),
        names=key_names(text),
        token_sims=token_sims,
        phrases=tuple(name_phrases(text)),
    )
