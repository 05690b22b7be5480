"""Answerer: pick the best verbatim span of the top passages, or abstain.

Entry point: `extract_answer(index, question, hits, by_id, config)`.

No reader model ships offline, so the answer is chosen from the text's own structure:
1. Every sentence of the top `config.passages` passages (and of their folded
   duplicates) becomes a candidate with named features (rag/answering/features.py):
   late interaction of the question with the sentence and with the sentence before
   it, term coverage and novelty, the passage's scores and coverage, the answer type,
   position, names, and whether the question names something the corpus lacks.
2. Gates (rag/answering/gates.py) keep the sentences that hold what is asked: a number
   of what "how many" counts, a sum, a date, the role or act the question turns on. A
   sentence that fails one only wins when none passes, and then the answer is null.
3. A scorer (rag/answering/scorer.py, `config.scorer`) ranks them: the hand-set
   weighted sum or the logistic regression trained on SQuAD. "What did X say?" prefers
   the sentences giving X's words (rag/answering/speaker.py).
4. The chosen sentence is widened the way a reader would (speaker.py): a "who"
   question takes the sentence naming the speaker, "what did X say" the whole
   quotation after the lead-in; a neighbour that scores nearly as well joins it
   (`close_neighbour`), and so does a sentence of a few words right after it
   (`short_follow`: "None endured.").
5. Null when the strongest sentence's evidence is below the scorer's threshold, when
   no sentence passes the gates, or when the question names something (a person, a
   place, a number) that no chunk of the corpus, or the answer's article, holds.
All index data is read through rag/answering/view.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.answering import reference, speaker
from rag.answering.features import Candidate, Context, features, sentence_late
from rag.answering.scorer import make_scorer
from rag.answering.view import IndexView
from rag.chunker import Chunk
from rag.config import AnswererConfig
from rag.index import Index
from rag.question import Question
from rag.retriever import Hit


@dataclass(frozen=True)
class Answer:
    text: str | None
    chunk_id: int | None
    start: int | None
    end: int | None
    confidence: float
    evidence: float
    # The passage cited right after the answer's own: the quote whose speaker the
    # answer names, when that is in the passage before (rag/answering/speaker.py).
    support_chunk_id: int | None = None
    # The chosen sentence's features, by name (for evaluation and training).
    features: dict[str, float] = field(default_factory=dict, compare=False, repr=False)


NO_ANSWER = Answer(None, None, None, None, 0.0, 0.0)


def candidates(
    view: IndexView,
    question: Question,
    hits: list[Hit],
    by_id: dict[int, Hit],
    config: AnswererConfig,
) -> list[Candidate]:
    """Every sentence of the top passages and their folded duplicates."""
    weights = view.token_weights(question.token_ids)
    found = []
    for rank, hit in enumerate(hits[: config.passages]):
        for cid in [hit.chunk_id, *hit.also_in]:
            chunk = view.chunk(cid)
            scored = by_id.get(cid, hit)
            signals = scored.signals
            passage_late = signals.get("late_context") or signals.get("dense", 0.0)
            late = sentence_late(view, cid, question, weights)
            for i, ((s, e), (own, window, pooled)) in enumerate(
                zip(chunk.sentences, late, strict=True)
            ):
                terms = view.span_terms(chunk.source, s, e)
                found.append(
                    Candidate(
                        cid, i, s, e, rank, own, window, pooled, scored.score, passage_late, terms
                    )
                )
    return found


def scored_candidates(
    view: IndexView,
    question: Question,
    hits: list[Hit],
    by_id: dict[int, Hit],
    config: AnswererConfig,
) -> list[tuple[Candidate, dict[str, float]]]:
    """Every candidate with its features by name (what the scorers, and the training of
    the learned one, read)."""
    found = candidates(view, question, hits, by_id, config)
    sources = tuple(dict.fromkeys(view.chunk(c.chunk_id).source for c in found))
    context = Context(view, question, config, sources)
    return [(c, features(c, context)) for c in found]


def gated(values: dict[str, float], config: AnswererConfig) -> bool:
    """Whether a candidate fails a gate (rag/answering/gates.py) that is switched on."""
    return bool(
        (config.use_type_gate and values["type_missing"] > 0)
        or (config.use_focus_gate and values["focus_missing"] > 0)
    )


@dataclass(frozen=True)
class Choice:
    """The sentence to answer with, and the features the decision to answer reads."""

    candidate: Candidate
    values: dict[str, float]
    # The highest score among the sentences that hold what is asked (the type gate):
    # whether to answer is decided on the strongest evidence; which sentence answers,
    # also on who said it.
    strongest: dict[str, float]
    # "What did X say?" with no sentence that gives X's words: the answer is null.
    unsaid: bool = False
    # The sentence of the same passage next to the chosen one that joins the answer
    # (`close_neighbour`).
    neighbour: int | None = None


Key = tuple[bool, bool, bool, float]


def close_neighbour(ranked: list[tuple[Key, Candidate]], share: float) -> int | None:
    """The sentence number of the best candidate after the first of `ranked` (sorted
    best first) that is the first's neighbour in its passage, when it ranks alike on the
    gates and the speaker and scores at least `share` of the first's score.

    SQuAD-trained sentence scores separate the answer's sentence from its neighbours
    less well than from the rest of the passage: on the seeds set's development half, 18
    of the wrong answers had the asked-for fact in the chosen sentence's paragraph. Taking
    the neighbour when it scores close keeps the answer one verbatim span in one passage.
    """
    if not ranked or share <= 0:
        return None
    (key, chosen), rest = ranked[0], ranked[1:]
    if key[3] <= 0:
        return None
    for other_key, other in rest:
        if other_key[:3] != key[:3]:
            continue
        if other.chunk_id == chosen.chunk_id and abs(other.sentence - chosen.sentence) == 1:
            return other.sentence if other_key[3] >= share * key[3] else None
    return None


def short_follow(view: IndexView, chunk: Chunk, last: int, words: int) -> bool:
    """Whether the sentence after sentence `last` of `chunk` has at most `words` words
    (0: never): so short a sentence finishes the one before rather than standing alone."""
    if words <= 0 or last + 1 >= len(chunk.sentences):
        return False
    start, end = chunk.sentences[last + 1]
    return len(view.text(chunk.source)[start:end].split()) <= words


def best_candidate(
    view: IndexView,
    question: Question,
    hits: list[Hit],
    by_id: dict[int, Hit],
    config: AnswererConfig,
) -> Choice | None:
    """The highest-scoring candidate and its features (first wins a tie). With the type
    gate on, a sentence that lacks what the question asks for (a number of the counted
    thing, a date...) only wins when no sentence has it, and then the answer is null.
    "What did X say?" prefers the sentences that give X's words over those that only
    describe X (rag/answering/speaker.py, `said_by`), and "What did X add?" those of
    them that say "added"; when none gives X's words, the answer is null (`unsaid`),
    unless X is the article or its author ("What does the PSIA analysis say ...?")."""
    scorer = make_scorer(config)
    who = speaker.sayer(question) if config.use_quote else frozenset()
    verb = speaker.said_as(question) if who else None
    ranked = []
    for c, values in scored_candidates(view, question, hits, by_id, config):
        said = bool(who) and speaker.said_by(view, c.chunk_id, c.sentence, who)
        as_asked = (
            said
            and verb is not None
            and bool(verb.search(view.text(view.chunk(c.chunk_id).source)[c.start : c.end]))
        )
        key: Key = (not gated(values, config), said, as_asked, scorer.score(values))
        ranked.append((key, c, values))
    if not ranked:
        return None
    # max() keeps the first of equal keys: the earlier candidate wins a tie.
    key, c, values = max(ranked, key=lambda r: r[0])
    strongest = max((r for r in ranked if r[0][0] == key[0]), key=lambda r: r[0][3])
    # "What did X say ...?" when no sentence gives X's words: X is quoted nowhere near.
    unsaid = config.use_quote and speaker.quotes_someone(question) and not key[1]
    neighbour = None
    if config.use_neighbour:
        # Sorted by key alone and stable: equal keys keep corpus order, as max() does.
        order = sorted(ranked, key=lambda r: r[0], reverse=True)
        order.sort(key=lambda r: r[1] is not c)  # the chosen one first
        neighbour = close_neighbour([(k, cand) for k, cand, _ in order], config.neighbour_share)
    return Choice(c, values, strongest[2], unsaid, neighbour)


def widen(
    view: IndexView,
    question: Question,
    c: Candidate,
    config: AnswererConfig,
    nearby: tuple[int, ...] = (),
) -> speaker.Span:
    """The span a careful reader would quote for the chosen sentence; `nearby` are the
    candidate passages (a quote may open the passage after its lead-in)."""
    if config.use_speaker and speaker.asks_who(question):
        return speaker.resolve_speaker(view, question, c.chunk_id, c.sentence, nearby)
    if config.use_quote and speaker.asks_what_said(question):
        return speaker.extend_quote(view, question, c.chunk_id, c.sentence, nearby)
    if config.use_reference:
        named = reference.resolve_reference(view, question, c.chunk_id, c.sentence)
        if named is None:
            named = reference.continued(view, question, c.chunk_id, c.sentence)
        if named is not None:
            return named
    return speaker.Span(c.chunk_id, c.sentence, c.sentence)


def extract_answer(
    index: Index,
    question: Question,
    hits: list[Hit],
    by_id: dict[int, Hit],
    config: AnswererConfig,
) -> Answer:
    """The best span of the top passages, with its offsets, or a null answer."""
    view = IndexView(index)
    chosen = best_candidate(view, question, hits, by_id, config)
    if chosen is None:
        return NO_ANSWER
    c, values = chosen.candidate, chosen.values
    scorer = make_scorer(config)
    strength = scorer.evidence(chosen.strongest)
    confidence = round(scorer.confidence(strength), 4)
    absent = (
        (config.use_absence and values["key_absent"] > 0)
        or (config.use_subject and values["subject_missing"] > 0)
        or gated(values, config)
        or chosen.unsaid
    )
    if strength < scorer.threshold or absent:
        return Answer(
            None,
            None,
            None,
            None,
            min(confidence, 0.4999) if absent else confidence,
            strength,
            features=values,
        )
    nearby = tuple(
        dict.fromkeys(cid for h in hits[: config.passages] for cid in (h.chunk_id, *h.also_in))
    )
    span = widen(view, question, c, config, nearby)
    chunk = view.chunk(span.chunk_id)
    first, last = span.first, span.last
    if chosen.neighbour is not None and span.chunk_id == c.chunk_id:
        first, last = min(first, chosen.neighbour), max(last, chosen.neighbour)
    if config.use_follow and short_follow(view, chunk, last, config.follow_words):
        last += 1
    start, end = chunk.sentences[first][0], chunk.sentences[last][1]
    text = view.text(chunk.source)[start:end]
    return Answer(text, span.chunk_id, start, end, confidence, strength, span.support, values)
