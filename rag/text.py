"""Text utilities shared by every stage: BM25 terms, stopwords, sentence spans, folding.

One definition each, used by the chunker (sentences), question analysis and BM25
(terms), the embedder (which word pieces carry content), the answerer and evaluation
(folding). Everything here is pure string work with no model.
"""

from __future__ import annotations

import re
from functools import lru_cache

import bm25s.stopwords
import Stemmer

# Whitespace a paragraph or sentence is trimmed of (a UTF-8 BOM and no-break space too).
WHITESPACE = " \t\r\n\ufeff\u00a0"
_WORD = re.compile(r"\w+", re.UNICODE)

# Question words and auxiliaries say what is asked, not what to match.
QUESTION_WORDS = frozenset(
    {"what", "when", "who", "whom", "whose", "which", "where", "why", "how"}
    | {"did", "does", "do", "is", "are", "was", "were", "according"}
)

# A sentence ends at . ! ? or … (plus closing quotes/brackets) followed by whitespace and
# an opening character of a new sentence.
_SENT_END = re.compile(r"[.!?…]+[\"”’')\]]*(?=\s+[\"“‘'(\[]?[A-Z0-9])")
_ABBREV = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "gen",
    "jr",
    "sr",
    "no",
    "vs",
    "e.g",
    "i.e",
    "prof",
    "col",
}
_INITIALS = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]$")

# Curly quotes and dashes folded to their plain forms, for comparing phrases.
_FOLD = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "—": "-", "–": "-"})


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """English stopwords (bm25s's list), left out of BM25 terms and content tokens."""
    return frozenset(bm25s.stopwords.STOPWORDS_EN)


def tokenize(text: str) -> list[str]:
    """BM25 terms: lower-cased, stopword-free, Snowball-stemmed word tokens. The one
    tokenizer for documents and questions alike."""
    stop = stopwords()
    words = [
        w
        for w in _WORD.findall(text.lower().replace("’", "'"))
        if w not in stop and (len(w) > 1 or w.isdigit())
    ]
    return _stemmer().stemWords(words)


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    """`(start, end)` narrowed so that `text[start:end]` has no surrounding whitespace."""
    while start < end and text[start] in WHITESPACE:
        start += 1
    while end > start and text[end - 1] in WHITESPACE:
        end -= 1
    return start, end


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans (absolute offsets) of `text[start:end]`, trimmed of whitespace."""
    end = len(text) if end is None else end
    spans, cursor = [], start
    for match in _SENT_END.finditer(text, start, end):
        word = text[cursor : match.start() + 1].split()[-1].rstrip(".").lower()
        if word in _ABBREV or (_INITIALS.match(word) and len(word.replace(".", "")) <= 3):
            continue
        spans.append(trim(text, cursor, match.end()))
        cursor = match.end()
    spans.append(trim(text, cursor, end))
    return [(s, e) for s, e in spans if e > s]


_ACRONYM = re.compile(r"\b[A-Z]{2,6}\b")
# Small words a name may hold that its acronym skips ("Treaty of ...", "... and ...").
_SKIPPED = r"(?:(?:of|and|the|for|on|in)\s+)?"


def acronyms(text: str) -> dict[str, str]:
    """The acronyms in `text` ("SCO", "CSTO"), by their BM25 term."""
    return {t: m.group(0) for m in _ACRONYM.finditer(text) for t in tokenize(m.group(0))}


def spelled_out(acronym: str, text: str) -> bool:
    """Whether `text` writes `acronym` out: capitalised words whose initials spell it,
    small words between them aside ("the Shanghai Cooperation Organization" for "SCO",
    "Collective Security Treaty Organization" for "CSTO")."""
    words = [rf"{letter}[\w’'-]*" for letter in acronym.upper()]
    return re.search(r"\b" + rf"\s+{_SKIPPED}".join(words) + r"\b", text) is not None


def normalise(text: str) -> str:
    """Case-folded, curly quotes and dashes folded, whitespace collapsed."""
    return " ".join(text.translate(_FOLD).casefold().split())


# Irregular verbs: the Snowball stemmer leaves "wrote" and "write" apart, so a question
# asking where someone "write"s would not find "Markov wrote on Telegram". Base form ->
# the other forms (verbs of news reporting; a missing one only costs a lexical match).
_IRREGULAR = {
    "begin": "began begun",
    "bring": "brought",
    "build": "built",
    "buy": "bought",
    "catch": "caught",
    "choose": "chose chosen",
    "do": "did done",
    "draw": "drew drawn",
    "drive": "drove driven",
    "fall": "fell fallen",
    "fight": "fought",
    "find": "found",
    "flee": "fled",
    "freeze": "froze frozen",
    "give": "gave given",
    "go": "went gone",
    "grow": "grew grown",
    "hide": "hid hidden",
    "hold": "held",
    "keep": "kept",
    "know": "knew known",
    "lead": "led",
    "leave": "left",
    "lose": "lost",
    "make": "made",
    "mean": "meant",
    "meet": "met",
    "pay": "paid",
    "rise": "rose risen",
    "run": "ran",
    "say": "said",
    "see": "saw seen",
    "seek": "sought",
    "sell": "sold",
    "send": "sent",
    "shoot": "shot",
    "speak": "spoke spoken",
    "spend": "spent",
    "stand": "stood",
    "take": "took taken",
    "teach": "taught",
    "tell": "told",
    "think": "thought",
    "throw": "threw thrown",
    "win": "won",
    "write": "wrote written",
}


# Past participles of those verbs that do not end in "-ed" ("begun", "built", "thrown"),
# for telling a passive act in a question (rag/answering/gates.py).
IRREGULAR_PARTICIPLES = frozenset(others.split()[-1] for others in _IRREGULAR.values()) - {
    "ran"  # "run" is its own participle
}


@lru_cache(maxsize=1)
def _forms() -> dict[str, frozenset[str]]:
    """Stem -> the stems of all forms of its verb (itself included)."""
    out: dict[str, frozenset[str]] = {}
    for base, others in _IRREGULAR.items():
        stems = frozenset(t for w in (base, *others.split()) for t in _stem_all(w))
        for t in stems:
            out[t] = out.get(t, frozenset()) | stems
    return out


def _stem_all(word: str) -> list[str]:
    """A word's stem, stopword or not ("did" is a stopword, "do" its form)."""
    return list(_stemmer().stemWords([word.lower()]))


def forms(term: str) -> frozenset[str]:
    """The BM25 terms of every form of an irregular verb `term` is a form of ("write" ->
    write, wrote, written), or just `term`."""
    return _forms().get(term, frozenset({term}))
