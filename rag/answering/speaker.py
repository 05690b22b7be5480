"""Who said it, and what was said: widen the chosen sentence the way a reader would.

- A "who" question whose best sentence names nobody ("... ,” he added.", a bare quote)
  is answered with the sentence that names the speaker: the span from that sentence to
  the quote when both are in one passage, or the naming sentence of the passage before
  ("President Trump urged ..."), which then comes first among the citations with the
  quote's passage right after it. When no sentence names them, a pronoun ("she says")
  takes the sentence before, which describes them ("an elderly woman ..."). A sentence
  that says who, by a description ("The UN secretary-general said"), stays alone. A
  sentence that goes on with or closes a quotation opened before it takes the speaker of
  the quotation's first sentence; names inside the quoted words are nobody's speaker.
- A quotation that runs on ("Nexta TV commented: “This isn’t shock value." + "It’s a
  blunt political gesture ...”") is kept whole, up to its closing mark, and so is the
  attribution that follows it ("..., Markov wrote on Telegram").
- "What did X say?" (or "According to X, what ...?") answered by a lead-in that names X
  takes in the quotation after it, and a sentence that opens a quotation runs to its end;
  before that, the answerer prefers the sentences that give X's words (`said_by`) over
  those that only describe X.

The answer stays one verbatim span inside one passage: consecutive sentences of one
chunk, from the start of the first to the end of the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.answering.view import IndexView
from rag.question import NAME, QUOTE, Question
from rag.text import tokenize

# Verbs of saying, past and present ("analysts like Smagin note that ..."); not the
# forms that are mostly nouns after a name ("Soviet states", "Iran's claims").
_VERBS = (
    r"said|says|say|added|adds|wrote|writes|told|tells|asked|asks|argued|argues|argue"
    r"|warned|warns|warn|noted|notes|note|commented|claimed|stated|insisted|insists"
    r"|explained|explains|was quoted|is heard saying|predicted|predicts|suggested|suggests"
    r"|believes|believe|urged|urges|vowed|vows|threatened|threatens|pledged|demanded"
    r"|accused|declared|replied|responded|described|describes"
)
_PRONOUN = r"(?:he|she|they|it|we|i|you|the sources?)"
# What may stand between a subject and its verb of saying: "She has said", "he also
# warned", "they reportedly told".
_AUXILIARY = r"has|have|had|also|later|then|once|\w+ly"
# A sentence attributed to someone named: "Larijani was quoted as saying", "Nexta TV
# commented:", "Irina, a mother of two ..., told Al Jazeera", "said Sabeti".
_NAMED_ATTRIBUTION = re.compile(
    rf"\b(?!(?:He|She|They|It|We|I|You|The|This|That)\b)[A-Z][\w’'.-]+"
    rf"(?:\s+[A-Z][\w’'.-]+)*(?:,[^“”\"]{{0,120}}?,)?\s+(?:{_VERBS})\b"
    rf"|\b(?:{_VERBS})\s+(?!(?:He|She|They|It|The)\b)[A-Z][\w’'.-]+"
)
# A sentence whose speaker it describes rather than names: "The UN secretary-general
# said he was “shocked”", "European officials warned". The "who" is here, though no
# capitalised name is.
_DESCRIBED_ATTRIBUTION = re.compile(
    rf"\b(?!(?:he|she|they|it|we|i|you|who|which|that|{_AUXILIARY})\b)[a-z][\w’'-]+"
    rf"\s+(?:{_VERBS})\b"
)
# A sentence that names its speaker only by a pronoun, or is a quote with no speaker.
_PRONOUN_ATTRIBUTION = re.compile(rf"\b{_PRONOUN}\s+(?:(?:{_AUXILIARY})\s+)?(?:{_VERBS})\b", re.I)
_OPEN, _CLOSE = "“", "”"
# "Who ...", "Which Russian official ...", "the analyst who said ..."; not "What did
# the minister say ...", which asks for the words, nor "What is the minister's ...".
_WHO = re.compile(
    r"^\s*(?:who|whose|whom)\b|\bwho (?:said|says|wrote|warned|asked)\b"
    # After a phrase that sets the scene: "According to the commentary, who ...".
    r"|^\W*(?:in|on|at|after|before|during|according to|besides|apart from|along with"
    r"|beyond|unlike|like)\b[^?]*?,\s*(?:who|whose|whom)\b"
    # "According to which Russian Iran expert is ...?"
    r"|^\W*according to (?:which|whom|whose)\b"
    # "Which Russian interviewee said ...?": whoever the subject, a verb of saying asks
    # for the one who said it ("What kind of outlet claimed ...?" asks for a description).
    # Finite forms only, not `_VERBS`: "What analysts say about ..." asks for the words.
    r"|^\W*(?:which|what) (?!(?:kind|type|sort)\b)"
    r"(?:(?!(?:is|was|are|were|did|does|do|has|have|had)\b)[\w-]+ ){1,3}"
    r"(?:said|says|told|tells|wrote|writes|warned|warns|argued|argues|claimed|claims"
    r"|described|describes)\b"
    r"|^\W*(?:which|what) (?:(?!(?:is|was|are|were|did|does|do|has|have|had)\b)[\w-]+ ){0,2}"
    r"(?:official|spokes(?:wo)?man|spokesperson|minister|diplomat|analyst|expert|politician"
    r"|lawmaker|commentator|journalist|person|leader|woman|man|women|men|user|activist"
    r"|protester|blogger|writer|author|reporter|scholar|academic|lecturer|professor"
    r"|researcher)s?\b(?!['’])",
    re.I,
)
# "What did X say", "How did X describe", "What rhetorical questions did X ask": "what"
# and up to three words naming what was said, then the auxiliary, X and the verb. "How
# did X react / respond / reply" asks for X's words too, when the article quotes X
# reacting ("“Iran? What Iran? …,” Irina … told Al Jazeera"); "reply" alone has its
# forms preferred ("replied"), as "add" has.
_ASKED = r"\b(?:what|how)(?: [\w-]+){0,3}? (?:did|does|do|has|have)"
_VERBS_ASKED = (
    r"say|said|write|tell|told|warn|ask|add|call|comment|claim|argue|predict|describe"
    r"|characteri[sz]e|portray|react|respond|reply"
)
_ANY_SAYING = re.compile(r"say|said|describe|characteri[sz]e|portray|react|respond", re.I)
# Every form of a verb of saying this module knows, in a text or in a question ("What
# did X write about ...?"), as a regex alternation (gates.topic reads it).
SAYING_FORMS = rf"{_VERBS}|{_VERBS_ASKED}"
_WHAT_SAID = re.compile(rf"{_ASKED}\b.+\b(?:{_VERBS_ASKED})\b", re.I)
# How far the speaker is looked for, in sentences.
REACH = 2
# How many sentences a quotation may run over ("“Iran? What Iran? We are busy trying to
# survive. … Don’t bother me with questions about Iran,” Irina … told Al Jazeera").
QUOTE_REACH = 6
# A sentence that continues with the same person as its subject ("She has said she was
# arrested ..."): the speaker of a quote after it may be named before it.
_PRONOUN_SUBJECT = re.compile(r"^\W*(?:he|she|they)\b", re.I)


@dataclass(frozen=True)
class Span:
    chunk_id: int
    first: int  # first and last sentence of the chunk, inclusive
    last: int
    # The chunk of the quote this span names the speaker of, when that is another
    # chunk (the passage before): cited right after the answer's own.
    support: int | None = None


def asks_who(question: Question) -> bool:
    return bool(_WHO.search(question.text))


# "According to J.K. Rowling, what do ...": what someone's words say.
_ACCORDING = re.compile(r"^\W*according to\b[^,?]*,\s*(?:what|how)\b", re.I)


def asks_what_said(question: Question) -> bool:
    return (
        bool(_WHAT_SAID.search(question.text) or _ACCORDING.search(question.text))
        or question.expects is QUOTE
    )


# "What did X say/add/warn ...": X, the words between the auxiliary and the verb.
_SAYER = re.compile(rf"{_ASKED} (.+?) ({_VERBS_ASKED})\b", re.I)
_SAYING = re.compile(rf"[“”\"]|\b(?:{_VERBS})\b")
# Characters before a passage read for the speaker of its first sentence.
_BEFORE = 400
# The forms of a verb of saying in a text; "say" is any saying, so it has none.
_VERB_FORMS = {"tell": "tell|told", "told": "tell|told", "write": "writ|wrote", "reply": "repl"}


def said_as(question: Question) -> re.Pattern[str] | None:
    """How "What did X add / warn / write ...?" says X spoke, as a pattern of the verb's
    forms ("added", "adds"); None for "say", which any attribution answers, for
    "describe", "characterise" and "portray", which ask what X called something, not
    how X said it, and for "react" and "respond", whose answer is what X said."""
    m = _SAYER.search(question.text)
    if not m or _ANY_SAYING.fullmatch(m.group(2)):
        return None
    verb = m.group(2).lower()
    stem = _VERB_FORMS.get(verb, verb.removesuffix("e"))
    return re.compile(rf"\b(?:{stem})\w*", re.I)


# "Iran's parliament speaker": a capitalised possessive before a lower-case word.
_OWNER = re.compile(r"\b[A-Z][\w.-]*['’]s?(?=\s+[a-z])")


def sayer(question: Question) -> frozenset[str]:
    """The terms of the capitalised words naming X in "What did X say ...?" ("Ali
    Larijani" -> ali, larijani); empty when X is no name ("the minister", "Iran's
    parliament speaker": a possessive before a lower-case role is whose X is, not X)."""
    m = _SAYER.search(question.text)
    if not m:
        return frozenset()
    x = _OWNER.sub("", m.group(1))
    return frozenset(t for w in re.findall(r"\b[A-Z][\w’'.-]*", x) for t in tokenize(w))


# "What does the PSIA analysis say", "How does the commentary on Moscow's allies
# describe": X is the article itself or its author, whose words are the whole text.
_THE_ARTICLE = re.compile(
    r"\b(?:analysis|piece|article|commentary|column|op-ed|editorial|lecturer|author|writer)\b",
    re.I,
)


def quotes_someone(question: Question) -> bool:
    """Whether "What did X say ...?" asks for the words of an X the articles quote: not
    the article itself or its author ("the PSIA analysis", "the commentary on ..."), and
    not a number, a date or a name that X reports ("How many people does Iran
    International say were killed?": the outlet may be the article's own, and the type
    gate decides)."""
    m = _SAYER.search(question.text)
    return (
        bool(m)
        and bool(sayer(question))
        and not _THE_ARTICLE.search(m.group(1))
        and question.expects in (None, QUOTE)
    )


def said_by(view: IndexView, cid: int, i: int, who: frozenset[str]) -> bool:
    """Whether sentence `i` of chunk `cid` gives words of `who`: it quotes or reports
    speech ("...,” Larijani was quoted as saying", "Bondarev told Al Jazeera that") and
    names them, or names nobody ("..., he added.") after a sentence (or, first in its
    passage, the context before it) that names them. A sentence that only describes
    them ("echoed by security chief Ali Larijani, who downplayed ..."), or that gives
    someone else's words about them ("Ghalibaf told a rally ..., addressing Trump
    directly", "“Trump has essentially decided ...,” the sources said"), gives none."""
    text = sentence_text(view, cid, i)
    if not who:
        return False
    inside = enclosing_quotation(view, cid, i)
    if inside is not None:
        # A sentence in the middle of a quotation ("My husband has only enough income
        # ...") is the words of whoever the quotation is attributed to.
        return any(who & s for s in _speakers(view, cid, *inside))
    if not _SAYING.search(text):
        return False
    first, last = quote_start(view, cid, i), quote_end(view, cid, i)
    if who & set(tokenize(text)):
        # Whose words these are, when the sentence, or the rest of the quotation it is
        # part of, says so ("Ghalibaf told", "the sources said"): X must be among them.
        speakers = _speakers(view, cid, first, last)
        return not speakers or any(who & s for s in speakers)
    if not refers_back(text):
        return False
    chunk = view.chunk(cid)
    if not first:
        # First in its passage: the end of the text before it (the paragraph before, as
        # the chunk's context is).
        return bool(who & set(tokenize(view.text(chunk.source)[: chunk.start][-_BEFORE:])))
    # The sentence before the quotation, or further back over sentences that go on about
    # the same person ("The woman posts ... as Morticia Addams" + "She has said ..." +
    # "In one post, she wrote: “...”").
    for j in range(first - 1, max(-1, first - 1 - REACH), -1):
        before = sentence_text(view, cid, j)
        if who & set(tokenize(before)):
            return True
        if not _PRONOUN_SUBJECT.match(before):
            break
    return False


def _speakers(view: IndexView, cid: int, first: int, last: int) -> list[set[str]]:
    """The terms of each attribution ("Ghalibaf told", "he added") in sentences
    `first`..`last` of chunk `cid`."""
    quoted = " ".join(sentence_text(view, cid, j) for j in range(first, last + 1))
    return [
        set(tokenize(m.group(0)))
        for pattern in (_NAMED_ATTRIBUTION, _PRONOUN_ATTRIBUTION)
        for m in pattern.finditer(quoted)
    ]


def enclosing_quotation(view: IndexView, cid: int, i: int) -> tuple[int, int] | None:
    """The first and last sentences of the quotation that sentence `i` of chunk `cid`
    lies inside without opening or closing it ("We are busy trying to survive." in
    "“Iran? What Iran? We are busy …. Don’t bother me …,” Irina … told Al Jazeera"), or
    None."""
    if _open_quotes(sentence_text(view, cid, i)) != 0:
        return None
    n = len(view.chunk(cid).sentences)
    for k in range(i + 1, min(n, i + 1 + QUOTE_REACH)):
        opened = _open_quotes(sentence_text(view, cid, k))
        if opened > 0:
            return None
        if opened < 0:
            first = quote_start(view, cid, k)
            return (first, k) if first < i else None
    return None


def sentence_text(view: IndexView, cid: int, i: int) -> str:
    """The text of sentence `i` of chunk `cid`."""
    chunk = view.chunk(cid)
    s, e = chunk.sentences[i]
    return view.text(chunk.source)[s:e]


def _open_quotes(text: str) -> int:
    """Quotation marks opened and not closed in `text` (curly marks; a straight '"'
    opens when the count so far is even)."""
    return text.count(_OPEN) - text.count(_CLOSE) + (text.count('"') % 2)


def names_speaker(text: str, question: Question) -> bool:
    """Whether `text` attributes words to someone by name, or names a person the
    question does not: the reader's "who" is here."""
    for m in _NAMED_ATTRIBUTION.finditer(text):
        terms = set(tokenize(m.group(0)))
        if terms - set(question.terms) - set(tokenize(_VERBS.replace("|", " "))):
            return True
    # A name inside the quoted words is not whose words they are ("Threaten President
    # Trump …?” he asked").
    for m in NAME.finditer(outside_quotes(text)):
        if not m.group(0).startswith(("The ", "A ", "An ")) and set(tokenize(m.group(0))) - set(
            question.terms
        ):
            return True
    return False


# Quoted words, to the closing mark or the end of the sentence: "you have threatened"
# inside a quotation attributes nothing.
_QUOTED = re.compile(r"“[^”]*(?:”|$)|\"[^\"]*(?:\"|$)")


def outside_quotes(text: str) -> str:
    """`text` without its quoted words: those between marks, those after an opening mark
    left open, and those before a closing mark whose quotation opened in an earlier
    sentence ("… lose interest in Russia?” he asked" -> " he asked")."""
    if _CLOSE in text.split(_OPEN, 1)[0]:
        text = " " + text.split(_CLOSE, 1)[1]
    return _QUOTED.sub(" ", text)


def refers_back(text: str) -> bool:
    """A sentence whose speaker is elsewhere: "..., he added", or a bare quotation."""
    if _PRONOUN_ATTRIBUTION.search(outside_quotes(text)):
        return True
    return text.lstrip().startswith((_OPEN, '"')) and not _NAMED_ATTRIBUTION.search(text)


def quote_end(view: IndexView, cid: int, i: int) -> int:
    """The last sentence of the quotation sentence `i` opens (itself when closed), within
    QUOTE_REACH sentences of the chunk and its end."""
    n = len(view.chunk(cid).sentences)
    depth = _open_quotes(sentence_text(view, cid, i))
    j = i
    while depth > 0 and j + 1 < n and j - i < QUOTE_REACH:
        j += 1
        depth += _open_quotes(sentence_text(view, cid, j))
    # A quotation left open (or closed with the wrong mark, as “...lives.“) runs on to
    # the last sentence reached.
    return j


# Reported speech: a verb of saying, then "that" and the words ("told Iran International
# that the blackout has severed access ...").
_REPORTED = re.compile(rf"\b(?:{_VERBS})\b(?:\s+[\w’'.-]+){{0,4}}?\s+that\s+\w+", re.I)
# A claim whose speaker is only described ("A former Russian diplomat says ...", "...,
# according to one of Russia's leading Iran experts."): news leads name the speaker just
# after ("Boris Bondarev, a former Russian diplomat who ..., told Al Jazeera"). Group 1
# or 2: the description.
_DESCRIBED = re.compile(
    rf"^\W*(?:an?|one)\s+((?:[\w’'-]+\s+){{0,4}}?[\w’'-]+)\s+(?:{_VERBS})\b"
    r"|\baccording to (?:an?|one of)\s+((?:[\w’'-]+\s+){0,4}?[\w’'-]+)\W*$",
    re.I,
)


def named_after(
    view: IndexView, question: Question, cid: int, i: int, nearby: tuple[int, ...] = ()
) -> Span | None:
    """For sentence `i` of chunk `cid` whose speaker is only described: the sentence
    after it, in its passage or opening the next one (among `nearby`), that attributes
    words to someone by name: the very next one ("“Why rattle the sabers …?” Boris
    Bondarev … told Al Jazeera"), or a later one that repeats the description; None
    when there is none."""
    m = _DESCRIBED.search(sentence_text(view, cid, i))
    if not m:
        return None
    described = set(tokenize(m.group(1) or m.group(2)))
    n = len(view.chunk(cid).sentences)
    after = [(cid, j) for j in range(i + 1, min(n, i + 1 + REACH))]
    after += [
        (nxt, j)
        for nxt in nearby
        if nxt != cid and view.previous_chunk(nxt) == cid
        for j in range(min(REACH, len(view.chunk(nxt).sentences)))
    ]
    for k, (c, j) in enumerate(after):
        text = sentence_text(view, c, j)
        # The next sentence; in the next passage, its first, or the one after a bare
        # quotation opening it ("“Why rattle the sabers …?”" + "Boris Bondarev … told").
        next_one = k == 0 or (c != cid and j <= _opening(view, c))
        if (
            _NAMED_ATTRIBUTION.search(text)
            and names_speaker(text, question)
            and (next_one or described <= set(tokenize(text)))
        ):
            # In the claim's passage, the span runs from the claim to the name.
            return Span(cid, i, j) if c == cid else Span(c, j, j, support=cid)
    return None


def _opening(view: IndexView, cid: int) -> int:
    """Index of the first sentence of chunk `cid` after a bare quotation opening it (0
    when it opens with anything else)."""
    return quote_end(view, cid, 0) + 1 if refers_back(sentence_text(view, cid, 0)) else 0


def resolve_speaker(
    view: IndexView, question: Question, cid: int, i: int, nearby: tuple[int, ...] = ()
) -> Span:
    """For a "who" question answered by sentence `i` of chunk `cid`: the span that names
    the speaker (see the module docstring), or the sentence itself; `nearby` are the
    candidate passages (the speaker of a lead may be named in the next one)."""
    # A sentence that goes on with, or closes, a quotation opened before it ("I have been
    # dead for 47 years.”" after "..., she says, ...: “I am not afraid."): its speaker
    # is the quotation's, found from the sentence that opens it.
    opened = quote_start(view, cid, i)
    inside = enclosing_quotation(view, cid, i)
    if inside is not None:
        opened = inside[0]
    if opened < i:
        span = resolve_speaker(view, question, cid, opened, nearby)
        if span.chunk_id != cid:
            return span
        return Span(cid, span.first, max(span.last, i))
    own = sentence_text(view, cid, i)
    # A described speaker named right after ("A former diplomat says ..." + "Boris
    # Bondarev, a former diplomat, told ..."), whatever other names the claim holds.
    later = named_after(view, question, cid, i, nearby)
    if later is not None:
        return later
    if not refers_back(own) and (
        names_speaker(own, question) or _DESCRIBED_ATTRIBUTION.search(own) or _DESCRIBED.search(own)
    ):
        return Span(cid, i, i)
    # The quotation runs on and its attribution follows ("...,” Markov wrote).
    end = quote_end(view, cid, i)
    if end > i and names_speaker(sentence_text(view, cid, end), question):
        return Span(cid, i, end)
    # The speaker is named earlier in this passage (not by a sentence whose own speaker
    # is elsewhere: "“All American centers …,” he added." names no one) ...
    for j in range(i - 1, -1, -1):
        before = sentence_text(view, cid, j)
        if names_speaker(before, question) and not refers_back(before):
            return Span(cid, j, max(i, end))
    # ... or in the passage before, which this passage's quote continues.
    prev = view.previous_chunk(cid)
    if prev is not None:
        n = len(view.chunk(prev).sentences)
        for j in range(n - 1, max(-1, n - 1 - REACH), -1):
            text = sentence_text(view, prev, j)
            if _NAMED_ATTRIBUTION.search(text) and names_speaker(text, question):
                return Span(prev, j, j, support=cid)
    # Named nowhere near, but described in the sentence before, which the pronoun points
    # back to ("... shows an elderly woman with white hair ..." + "..., she says, ...").
    if i > 0 and _PRONOUN_ATTRIBUTION.search(own):
        return Span(cid, i - 1, max(i, end))
    return Span(cid, i, i)


def quote_start(view: IndexView, cid: int, i: int) -> int:
    """The first sentence of the quotation sentence `i` closes (itself when it closes
    none), within QUOTE_REACH sentences of the chunk."""
    depth = _open_quotes(sentence_text(view, cid, i))
    j = i
    while depth < 0 and j > 0 and i - j < QUOTE_REACH:
        j -= 1
        depth += _open_quotes(sentence_text(view, cid, j))
    return j if depth >= 0 else i


def extend_quote(
    view: IndexView, question: Question, cid: int, i: int, nearby: tuple[int, ...] = ()
) -> Span:
    """For "what did X say": the chosen sentence through the end of the quotation it
    opens or introduces, and back to the start of one it closes, within the chunk. A
    lead-in that ends its passage ("Another report by Jerusalem Post said ...") is
    answered by the quotation opening the next passage, when that is among `nearby`
    chunks; the lead-in's passage is then cited right after it. A sentence that reports
    the words itself ("Amin Sabeti told Iran International that the blackout has
    severed access ...") is the answer, not a lead-in."""
    n = len(view.chunk(cid).sentences)
    own = sentence_text(view, cid, i)
    lead_in = (
        _OPEN not in own
        and '"' not in own
        and _NAMED_ATTRIBUTION.search(own)
        and not _REPORTED.search(own)
    )
    if i == n - 1 and lead_in:
        for after in nearby:
            opens = sentence_text(view, after, 0).lstrip().startswith((_OPEN, '"'))
            if after != cid and opens and view.previous_chunk(after) == cid:
                return Span(after, 0, quote_end(view, after, 0), support=cid)
    first = quote_start(view, cid, i)
    if _open_quotes(own) > 0:
        return Span(cid, first, quote_end(view, cid, i))
    if i + 1 < n:
        after = sentence_text(view, cid, i + 1)
        attributed = bool(_NAMED_ATTRIBUTION.search(own) or _PRONOUN_ATTRIBUTION.search(own))
        introduces = own.rstrip().endswith(":") or (_OPEN not in own and '"' not in own)
        if (_OPEN in after or after.lstrip().startswith('"')) and introduces:
            return Span(cid, first, quote_end(view, cid, i + 1))
        if after.lstrip().startswith(_OPEN) and attributed:
            return Span(cid, first, quote_end(view, cid, i + 1))
    return Span(cid, first, i)
