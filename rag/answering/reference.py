"""What "this X" refers to: widen a sentence that names the thing asked about only by a
demonstrative to the sentence before it, which names it.

"Which post-Soviet security alliance does the commentary say exists only on paper?" is
best matched by "This post-Soviet NATO-like security alliance, which has existed since
2002, functions only on paper, …", whose "this" stands for "the Collective Security
Treaty Organization (CSTO)" at the end of the paragraph before. A careful reader quotes
the naming sentence: the two sentences together when both are in one passage, or the
naming sentence of the passage before, which then comes first among the citations with
the matched passage right after it (as for a speaker, rag/answering/speaker.py).

The other way round, a short sentence that the next one goes on about ("The Russian
response to these scenarios is, almost certainly, excluded." + "This is suggested by
Moscow's behaviour in several similar situations …") is answered with both: the claim
and what it rests on. So is a sentence of any length whose next one opens on "these/
this X", X being a word of the question ("... in Syria, Libya, and Africa, ..." +
"These ventures produced mixed results ..." for "the outcome of Russia's ventures").

Entry points: `resolve_reference(view, question, cid, i)`, `continued(view, question,
cid, i)`.
"""

from __future__ import annotations

import re

from rag.answering import gates
from rag.answering.speaker import Span, sentence_text
from rag.answering.view import IndexView
from rag.question import Question
from rag.text import tokenize

# "Which/what <up to four words> X <auxiliary> ...": X, the thing whose identity is asked.
_WHICH = re.compile(
    r"^\W*(?:which|what)\s+(?:[\w’'-]+\s+){0,4}?([a-z][\w-]*)\s+"
    r"(?:is|was|are|were|did|does|do|has|have|had|can|could|will|would)\b",
    re.I,
)
# A sentence opening on a demonstrative; the words after it up to the thing it names.
_THIS = re.compile(r"^\W*(?:this|that|these|those|such)\s+((?:[\w’'-]+[\s,]+){0,4}[\w’'-]+)", re.I)


def asked_thing(question: Question) -> str | None:
    """The stem of the thing a "which/what X ..." question asks to identify ("Which
    post-Soviet security alliance does ..." -> "allianc"), or None."""
    m = _WHICH.match(question.text)
    if not m:
        return None
    terms = tokenize(m.group(1))
    return terms[0] if terms else None


def resolve_reference(view: IndexView, question: Question, cid: int, i: int) -> Span | None:
    """For sentence `i` of chunk `cid` that opens on "this/these/such ... X", X being
    what the question asks to identify: the span that names X (the sentence before in
    the passage, with sentence `i`; or the last sentence of the passage before), when
    that sentence holds a name the question does not; else None."""
    thing = asked_thing(question)
    if thing is None:
        return None
    m = _THIS.match(sentence_text(view, cid, i))
    if not m or thing not in tokenize(m.group(1)):
        return None
    if i > 0:
        before = sentence_text(view, cid, i - 1)
        return Span(cid, i - 1, i) if gates.names_new(question, before) else None
    prev = view.previous_chunk(cid)
    if prev is None:
        return None
    last = len(view.chunk(prev).sentences) - 1
    if gates.names_new(question, sentence_text(view, prev, last)):
        return Span(prev, last, last, support=cid)
    return None


# A sentence that goes on about the one before: "It lies in ...", "This is suggested by".
_GOES_ON = re.compile(r"^\W*(?:it|this|that|these|such)\b", re.I)
# Up to this many words, a sentence is a claim whose substance may be in the next one.
SHORT = 12


def continued(view: IndexView, question: Question, cid: int, i: int) -> Span | None:
    """Sentence `i` of chunk `cid` with the next one, in the same passage, when that one
    goes on about it and either this one is short (SHORT words at most) or the next one
    opens on "this/these X" with X a word of the question; else None. Not for a
    question that asks for a date, a number or a name (`Question.expects`): the
    sentence that holds it is the answer ("The protests began in late December 2025."
    needs no "They spread fast.")."""
    if question.expects is not None or i + 1 >= len(view.chunk(cid).sentences):
        return None
    after = sentence_text(view, cid, i + 1)
    # "These ventures produced mixed results" after the sentence naming the ventures that
    # "the outcome of Russia's ventures" asks about: the next sentence is about the thing
    # asked, whatever the length of this one.
    this = _THIS.match(after)
    if this and set(tokenize(this.group(1))) & set(question.terms):
        return Span(cid, i, i + 1)
    if len(sentence_text(view, cid, i).split()) > SHORT:
        return None
    return Span(cid, i, i + 1) if _GOES_ON.match(after) else None
