"""Sentence features: each a named function of one candidate sentence, all of them a
mapping name -> value that the scorers (rag/answering/scorer.py) weigh by name.

Adding a feature is one function here and one entry in `FEATURES`; the hand-set scorer
reads its weight from `AnswererConfig.weights` (absent = 0), and the learned scorer
picks it up when `scripts/train_answerer.py` is run again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from rag.answering import gates
from rag.answering.view import IndexView
from rag.config import AnswererConfig
from rag.index.late import maxsim
from rag.question import Question
from rag.text import QUESTION_WORDS, acronyms, forms, spelled_out, tokenize


@dataclass(frozen=True)
class Candidate:
    """One sentence of a top passage, with what is known of it before scoring."""

    chunk_id: int
    sentence: int  # its number within the chunk
    start: int  # file offsets
    end: int
    rank: int  # rank of the passage among the top hits (its folded duplicates share it)
    own: float  # late interaction with the sentence's own tokens
    window: float  # ... with the sentence before it too
    pooled: float  # cosine of the question's vector with the sentence's mean token embedding
    passage: float  # the passage's fused retrieval score
    passage_late: float  # the passage's late interaction with its context
    terms: frozenset[str]  # the sentence's BM25 terms


@dataclass(frozen=True)
class Context:
    """What every feature may read besides the candidate."""

    view: IndexView
    question: Question
    config: AnswererConfig
    # The files of all the candidate passages (a question's name may be withheld in one
    # of them and the candidate come from another).
    sources: tuple[str, ...] = ()


Feature = Callable[[Candidate, Context], float]

# A sentence that names its speaker only by a pronoun, or continues the one before.
_REFERS_BACK = re.compile(
    r"^\W*(?:he|she|they|it|this|that|these|such|the latter|the former)\b"
    r"|\b(?:he|she|they)\s+(?:added|said|says|wrote|asked|argued|told|continued|warned)\b",
    re.I,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w’'-]*")


def coverage(view: IndexView, terms: list[str], present: frozenset[str]) -> float:
    """IDF-weighted share of the question's terms found among a text's terms `present`,
    in any form of an irregular verb ("write" found as "wrote"). A term the corpus never
    uses gets the highest IDF."""
    if not terms:
        return 0.0
    top = view.top_idf()
    weights = {t: view.term_idf(t) or top for t in set(terms)}
    total = sum(weights.values())
    found = sum(w for t, w in weights.items() if forms(t) & present)
    return found / total if total else 0.0


def novelty(question: Question, terms: frozenset[str]) -> float:
    """Share of the sentence's terms the question does not already contain: an answer
    adds something to the question rather than repeating it."""
    return len(terms - set(question.terms)) / len(terms) if terms else 0.0


def sentence_late(
    view: IndexView, cid: int, question: Question, weights: np.ndarray
) -> list[tuple[float, float, float]]:
    """Late interaction of the question with each sentence's tokens (contextual, from the
    chunk), alone and together with the sentence before it: "Ghalibaf told a rally ..."
    followed by the quote itself, which names nobody. A passage's first sentence takes
    the chunk's context as the sentence before (the heading, the end of the paragraph
    before: where "..., he added." finds its speaker)."""
    chunk = view.chunk(cid)
    tokens, spans = view.token_block(cid)
    shift = chunk.text_offset - chunk.start  # file offset -> offset in the embedded text
    scores = []
    for i, (s, e) in enumerate(chunk.sentences):
        # The context is embedded before the text, from offset 0 of the embedded text.
        window_start = chunk.sentences[i - 1][0] + shift if i else 0
        inside = (spans[:, 0] >= s + shift) & (spans[:, 1] <= e + shift)
        window = (spans[:, 0] >= window_start) & (spans[:, 1] <= e + shift)
        scores.append(
            (
                maxsim(question.tokens, weights, tokens[inside]),
                maxsim(question.tokens, weights, tokens[window]),
                pooled_cosine(question.vector, tokens[inside]),
            )
        )
    return scores


def pooled_cosine(vector: np.ndarray, tokens: np.ndarray) -> float:
    """Cosine of a question's pooled vector with the mean of a sentence's contextual
    token embeddings: the sentence's meaning as a whole, where MaxSim matches words."""
    if not len(tokens):
        return 0.0
    mean = tokens.astype(np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return float(mean @ vector) / norm if norm else 0.0


def _sentence(c: Candidate, x: Context) -> float:
    return c.own


def _pooled(c: Candidate, x: Context) -> float:
    return c.pooled


def _window(c: Candidate, x: Context) -> float:
    return c.window if x.config.use_window else c.own


def _coverage(c: Candidate, x: Context) -> float:
    return coverage(x.view, x.question.terms, c.terms) if x.config.use_lexical else 0.0


def _novelty(c: Candidate, x: Context) -> float:
    return novelty(x.question, c.terms) if x.config.use_lexical else 0.0


def _passage(c: Candidate, x: Context) -> float:
    return c.passage


def _passage_late(c: Candidate, x: Context) -> float:
    return c.passage_late


def _typed(c: Candidate, x: Context) -> float:
    expects = x.question.expects
    if not x.config.use_type or expects is None:
        return 0.0
    source = x.view.chunk(c.chunk_id).source
    return float(x.view.span_holds(expects, source, c.start, c.end))


def _rank(c: Candidate, x: Context) -> float:
    return float(c.rank)


def _evidence(c: Candidate, x: Context) -> float:
    """How strongly the sentence and its passage match the question, in [0, 1]: the
    hand-set scorer abstains below `min_score` of it."""
    sentence = max(c.own, c.window) or c.passage_late
    return 0.5 * sentence + 0.5 * c.passage_late


def _position(c: Candidate, x: Context) -> float:
    """1 for a passage's first sentence, 1/2 for the second...: leads state the facts."""
    return 1.0 / (1 + c.sentence)


def _entity(c: Candidate, x: Context) -> float:
    """Share of the question's capitalised words (names) whose terms the sentence holds,
    1 when the question names nothing."""
    names = x.question.names
    if not names:
        return 1.0
    return sum(1 for t in names if t in c.terms) / len(names)


# Words that ask rather than name what is asked about: no answer needs to hold them.
_ASKING = frozenset(
    t
    for w in QUESTION_WORDS | {"say", "said", "tell", "told", "according", "describe"}
    for t in tokenize(w)
)


def content_terms(question: Question) -> list[str]:
    """The question's BM25 terms that name what it asks about (not "what", "say"...)."""
    return [t for t in dict.fromkeys(question.terms) if t not in _ASKING]


def _passage_terms(c: Candidate, x: Context) -> frozenset[str]:
    chunk = x.view.chunk(c.chunk_id)
    return x.view.span_terms(chunk.source, chunk.start, chunk.end)


def _passage_coverage(c: Candidate, x: Context) -> float:
    """IDF-weighted share of the question's content terms that the whole passage holds:
    whether the passage is about what is asked, beyond the one sentence."""
    if not x.config.use_lexical:
        return 0.0
    return coverage(x.view, content_terms(x.question), _passage_terms(c, x))


def _unmatched(c: Candidate, x: Context) -> float:
    """The rarest content term of the question that neither the sentence nor its passage
    holds (in any form: "deliver" / "delivered"), as its IDF over the highest possible;
    0 when all are there. A question about "the price per barrel" answered from a
    passage that never says "barrel" asks about something the passage does not hold:
    the evidence for null in near-topic questions, that a shared topic hides."""
    if not x.config.use_lexical:
        return 0.0
    present = _passage_terms(c, x) | c.terms
    top = x.view.top_idf()
    missing = [
        x.view.term_idf(t) or top for t in content_terms(x.question) if not gates.named(t, present)
    ]
    return max(missing, default=0.0) / top


def _refers_back(c: Candidate, x: Context) -> float:
    text = x.view.text(x.view.chunk(c.chunk_id).source)[c.start : c.end]
    return float(bool(_REFERS_BACK.search(text)))


# Names that articles mostly write another way: the terms of a name's phrase -> terms
# that stand for it ("the US", "American", "Washington" for the United States).
ALIASES: dict[tuple[str, ...], frozenset[str]] = {
    ("unit", "state"): frozenset({"us", "america", "american", "washington"}),
    ("unit", "kingdom"): frozenset({"uk", "britain", "british", "london"}),
    ("unit", "nation"): frozenset({"un"}),
    ("european", "union"): frozenset({"eu", "brussel"}),
}


# Last words that an organisation's name shares with many others: "Amnesty International"
# is named by "Amnesty" as much as by "International" (which "Iran International" has).
_GENERIC_HEADS = frozenset(
    tokenize(
        "international ministry organization organisation union council agency party "
        "committee court fund institute association foundation group watch news"
    )
)


def name_head(phrase: tuple[str, ...]) -> tuple[str, ...]:
    """The terms that identify a name: its last term of 3+ characters or a number (the
    head of an English name: the surname, the noun), with the term before it when that
    one is generic ("amnesti", "intern" of "Amnesty International"); the whole name
    when all its terms are short."""
    terms = [t for t in phrase if len(t) > 2 or t[0].isdigit()] or list(phrase)
    return tuple(terms[-2:] if len(terms) > 1 and terms[-1] in _GENERIC_HEADS else terms[-1:])


def _spelled_out(phrase: tuple[str, ...], c: Candidate, x: Context) -> bool:
    """Whether the name is an acronym of the question ("SCO") that the candidate's
    article writes out ("the Shanghai Cooperation Organization")."""
    acronym = acronyms(x.question.text).get(phrase[0]) if len(phrase) == 1 else None
    return acronym is not None and spelled_out(
        acronym, x.view.text(x.view.chunk(c.chunk_id).source)
    )


def _key_absent(c: Candidate, x: Context) -> float:
    """Whether the question names something no chunk of the corpus holds (the same for
    every candidate of a question: evidence for null): a name whose last term (of 3+
    characters, or a number) no chunk has, unless the corpus writes it by an alias ("the
    US" for "the United States"). The last term is the head of an English name, the
    surname or the noun: articles often drop a first name or a title ("Zakharova" for
    "Maria Zakharova") or write a modifier another way ("World War II" for "the Second
    World War"), but a name whose head is nowhere ("Recep Tayyip Erdogan", "Gazprom")
    is not in the articles. A generic last word ("International", "Ministry") needs the
    word before it too: "Amnesty International" is absent though "Iran International"
    is not. An acronym that the candidate's article writes out ("SCO", "the Shanghai
    Cooperation Organization") is not absent. The price: a modifier further out that is
    absent ("the Pakistani Foreign Ministry") is left to the other rules."""
    for phrase in x.question.phrases:
        if any(x.view.term_idf(t) > 0 for t in ALIASES.get(phrase, ())):
            continue
        if _spelled_out(phrase, c, x):
            continue
        if any(x.view.term_idf(t) == 0 for t in name_head(phrase)):
            return 1.0
    return 0.0


def _subject_missing(c: Candidate, x: Context) -> float:
    """Whether the candidate's article lacks one of the names the question mentions: its
    last term of 3+ characters (its head, as for `key_absent`), in no form, there. An
    answer about China needs an article that mentions China, and one about "Iranian
    President Masoud Pezeshkian" an article that names Pezeshkian, not just a president,
    however well another article matches the rest of the question. An acronym the
    article writes out ("SCO") is there.

    Looser than `key_absent` on purpose: a name of short terms only ("US") and a
    number of one or two digits are not looked for in the article. Looking for them
    (tried 2026-12-01 on the dev half) nulled "On what date was Venezuelan President
    Nicolas Maduro seized by the US?": the article that answers it never writes "US"
    (it has "American" once)."""
    present = x.view.document_terms(x.view.chunk(c.chunk_id).source)
    for phrase in x.question.phrases:
        terms = tuple(t for t in phrase if len(t) > 2)
        if not terms or ALIASES.get(phrase, frozenset()) & present or _spelled_out(phrase, c, x):
            continue
        if not all(gates.named(t, present) for t in name_head(terms)):
            return 1.0
    return 0.0


def _type_missing(c: Candidate, x: Context) -> float:
    """Whether the sentence (with the one before it) lacks what the question asks for:
    a number of what it counts, a date, a sum, an amount, a name (rag/answering/
    gates.py), or the candidates' articles mention the thing whose name is asked only
    unnamed."""
    chunk = x.view.chunk(c.chunk_id)
    before = chunk.sentences[c.sentence - 1][0] if c.sentence else None
    text = x.view.text(chunk.source)
    return float(
        gates.type_missing(
            x.question, text[c.start : c.end], text[before : c.start] if before is not None else ""
        )
        # Lazy: the articles are only read for a question that asks for a name.
        or gates.name_withheld(
            x.question, (x.view.text(s) for s in dict.fromkeys((chunk.source, *x.sources)))
        )
    )


# A term in more than half of the chunks (BM25's IDF below log 2) tells no topic apart.
EVERYWHERE_IDF = math.log(2)


def _focus_missing(c: Candidate, x: Context) -> float:
    """Whether the sentence (with the one before it) lacks the role, act or superlative
    the question turns on ("the current commander", "Who directed", "the largest"), or
    its passage every term, but those of most chunks, of what X's words are asked about
    ("What did X say about T?")."""
    chunk = x.view.chunk(c.chunk_id)
    text = x.view.text(chunk.source)
    first = chunk.sentences[c.sentence - 1][0] if c.sentence else c.start
    everywhere = frozenset(
        t for t in gates.topic(x.question) if x.view.term_idf(t) < EVERYWHERE_IDF
    )
    return float(
        gates.focus_missing(x.question, text[first : c.end])
        or gates.topic_missing(x.question, text[chunk.start : chunk.end], everywhere)
    )


FEATURES: dict[str, Feature] = {
    "sentence": _sentence,
    "window": _window,
    "pooled": _pooled,
    "coverage": _coverage,
    "novelty": _novelty,
    "passage": _passage,
    "passage_late": _passage_late,
    "type": _typed,
    "rank": _rank,
    "evidence": _evidence,
    "position": _position,
    "entity": _entity,
    "refers_back": _refers_back,
    "passage_coverage": _passage_coverage,
    "unmatched": _unmatched,
    "key_absent": _key_absent,
    "subject_missing": _subject_missing,
    "type_missing": _type_missing,
    "focus_missing": _focus_missing,
}


def features(candidate: Candidate, context: Context) -> dict[str, float]:
    """Every feature of one candidate, by name."""
    return {name: float(f(candidate, context)) for name, f in FEATURES.items()}


def vector(values: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    """The features `names`, in that order (what a trained model was fitted on)."""
    return np.asarray([values[n] for n in names], dtype=np.float64)
