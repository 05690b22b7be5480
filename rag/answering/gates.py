"""Gates: what a sentence must hold to answer a question at all, whatever its score.

- `type_missing`: "how many X" needs a number of X ("more than 400 bodies", not "four
  years ago"), "how old" the named person's age, "how long" a time or a length, "how
  much does it cost" a sum of money, "how much" and "what share" an amount, "when" a
  date (a decade or a century too, or "over the weekend"), "on what date" a day, "in
  which month" a month, "in what year" a year, "the capital of", "where",
  "what is the name of" and "what is X called" a name. A sentence that is a question
  answers only what was asked, and one dated in another month or year than the question
  pins answers another event (`dated_otherwise`). And the name of a thing the articles
  mention only unnamed ("the UN secretary-general said") is not in them
  (`name_withheld`).
- `focus_missing`: the role, act or superlative the question turns on must be there:
  "Who is the current commander of ...?" needs "commander", "Who directed ...?"
  "directed", "How many ... have been sentenced" "sentenced", "When was X overthrown"
  "overthrow(n)", "... the largest protest" "largest" (or "biggest": superlatives that
  say the same count as one). A speech act ("blamed", "urged") is no act to look for.

A sentence that fails a gate only answers when no candidate passes it, and then the
answer is null (rag/answerer.py): near-topic questions share the articles' topic and
names, and what gives them away is the one thing asked that the text never states.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from rag.answering import speaker
from rag.question import (
    DATE,
    DAY,
    DURATION,
    MONTH,
    MONTH_NAME,
    NUMBER,
    YEAR,
    YEAR_NUMBER,
    Question,
)
from rag.text import IRREGULAR_PARTICIPLES, forms, tokenize


@lru_cache(maxsize=4096)
def named(term: str, present: frozenset[str]) -> bool:
    """Whether a name's term is among `present`, a longer or shorter form of it too
    ("venezuela" / "venezuelan")."""
    if term in present:
        return True
    return len(term) >= 4 and any(
        len(t) >= 4 and (t.startswith(term) or term.startswith(t)) for t in present
    )


# An amount: money, a share or a measured quantity ("$2 billion", "80%", "40 bcm").
AMOUNT = re.compile(
    r"[$€£¥]\s?\d|\d[\d,.]*\s*(?:%|percent\b|per cent\b)"
    r"|\d[\d,.]*\s*(?:(?:million|billion|trillion|thousand)\s+)?"
    r"(?:dollars?|euros?|rubles?|roubles?|rials?|yuan|pounds?|tons?|tonnes?|barrels?"
    r"|bcm|cubic|kilo\w*|met(?:er|re)s?|miles?)\b",
    re.I,
)
# A sum of money ("$2 billion", "500 million euros").
MONEY = re.compile(
    r"[$€£¥]\s?\d|\d[\d,.]*\s*(?:(?:million|billion|trillion|thousand)\s+)?"
    r"(?:dollars?|euros?|rubles?|roubles?|rials?|yuan|pounds?)\b",
    re.I,
)
AGE = re.compile(
    r"\b\d{1,3}(?:-year-old|\s+years?\s+old)\b|\baged?\s+\d{1,3}\b"
    r"|\b(?:is|was|turned)\s+\d{1,3}\b(?![,.]?\d)|,\s*\d{1,3}\s*,",
    re.I,
)
_TIME_OR_LENGTH = re.compile(
    rf"{DURATION.pattern}|\b(?:minutes?|seconds?)\b|{AMOUNT.pattern}", re.I
)
# A name inside a sentence: a capitalised word after a lower-case word or a comma.
_NAMED = re.compile(r"(?<=[a-z,] )[A-Z][a-z]{2,}")


def names_new(question: Question, text: str) -> bool:
    """Whether `text` names something (a capitalised word inside a sentence, `_NAMED`)
    that the question does not."""
    own = set(question.terms)
    return any(set(tokenize(m.group(0))) - own for m in _NAMED.finditer(text))


# Questions whose answer must hold a number, a date, a sum, an amount or a name (of a
# place, of what "the name of" asks): a sentence without one does not answer them,
# however well it matches ("What is the population of Brazil?" answered with a sentence
# about cats in São Paulo).
_GATED: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    # Asked by the question's opening words, not by a clause inside it ("Why is it hard
    # to know how many people attended?").
    (
        re.compile(
            r"^\W*what (?:price|cost|sum)\b"
            r"|^\W*how much\b.*\b(?:costs?|pay|pays|paid|spen[dt]|worth|charged?)\b",
            re.I,
        ),
        MONEY,
    ),
    (
        re.compile(
            r"^\W*how much\b|^\W*what (?:amount|percentage|share|proportion|fraction)\b", re.I
        ),
        AMOUNT,
    ),
    # An age: "25-year-old", "aged 25", "is 25", "Nika Shakarami, 16," (not "2022").
    (re.compile(r"^\W*how old\b", re.I), AGE),
    (re.compile(r"^\W*how many\b|\bwhat is the population of\b", re.I), NUMBER),
    # A time ("for almost two weeks", "a 20-year partnership") or a length.
    (re.compile(r"^\W*(?:for )?how long\b", re.I), _TIME_OR_LENGTH),
    # "On what date / which day", "In which month", "In what year": a date of that
    # granularity ("On what date did Mahsa Amini die?" is not answered by "2022").
    (re.compile(r"^\W*(?:(?:on|by|until|since)\s+)?(?:what|which)\s+(?:date|day)\b", re.I), DAY),
    (re.compile(r"^\W*(?:(?:in|by|until|since)\s+)?(?:what|which)\s+month\b", re.I), MONTH),
    (re.compile(r"^\W*(?:(?:in|by|until|since)\s+)?(?:what|which)\s+year\b", re.I), YEAR),
    (re.compile(r"^\W*(?:(?:on|in|by)\s+)?when\b", re.I), DATE),
    # A place name inside a sentence, after a lower-case word or a comma (not a label
    # such as "DESIGN Human capital ...").
    (re.compile(r"\bcapital (?:city )?of\b", re.I), _NAMED),
    # "What is the name of the UN secretary-general ...?" needs a name too: a sentence
    # that says only "the UN secretary-general said" does not give it.
    (
        re.compile(
            r"^\W*what (?:is|was|are|were) (?:the )?names? of\b"
            r"|^\W*what (?:is|was|are|were) .+ (?:called|named)\W*$",
            re.I,
        ),
        _NAMED,
    ),
    # "Where ...", "In which country ..." need a name too: "a meeting in the coming
    # days" says when, not where. Any name, not only one after "in" or "to": "places such
    # as Hungary, Bavaria, and Latvia" says where.
    (
        re.compile(
            r"^\W*(?:where\b|(?:in|to|from)\s+which\s+"
            r"(?:countr(?:y(?!['’])|ies)|cit(?:y(?!['’])|ies)|provinces?|regions?|towns?)\b)",
            re.I,
        ),
        _NAMED,
    ),
]
# Looked for in the sentence itself, not with the one before: a capital named in a list
# of countries, "centuries of ties" or another person's age just before answers nothing.
_OWN_SENTENCE = (_NAMED, _TIME_OR_LENGTH, AGE)
# Where the counted thing of "how many ..." ends: its verb or a preposition.
_COUNT = re.compile(r"^\W*how many\s+(.*)", re.I)
_COUNT_ENDS = frozenset(
    [
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "is",
        "are",
        "was",
        "were",
        "will",
        "would",
        "can",
        "could",
        "may",
        "might",
        "in",
        "into",
        "of",
        "at",
        "on",
        "to",
        "from",
        "for",
        "by",
        "with",
        "during",
        "since",
    ]
)


# Words that count what follows their "of": "how many members of the security forces"
# counts security forces ("more than 100 security personnel").
_PARTITIVE = re.compile(
    r"^(?:members?|units?|pieces?|kinds?|types?|groups?)\s+of\s+(?:the\s+)?", re.I
)


def counted(question: str) -> frozenset[str]:
    """The terms of what a "how many" question counts: its words after "how many", up to
    its verb or a preposition, three at most ("How many S-400 batteries has Russia
    delivered?" -> batteri; "How many people live in Iran?" -> peopl, live; "How many
    members of the security forces died?" -> secur, forc). Numbers and one-letter pieces
    of a name ("S-400") are not what is counted."""
    m = _COUNT.match(asked(question))
    if not m:
        return frozenset()
    run: list[str] = []
    for word in _PARTITIVE.sub("", m.group(1)).split():
        if word.lower().strip("?,.;:!") in _COUNT_ENDS:
            break
        run.append(word)
        if len(run) == 3:
            break
    return frozenset(t for t in tokenize(" ".join(run)) if len(t) > 2 and not t[0].isdigit())


# "How many people ..." counts people of any kind ("thousands of protesters"), and a
# collective with no noun of its own counts them too ("leaving millions unable to
# communicate").
_PEOPLE = frozenset(tokenize("people persons individuals"))
# Matched as written, not stemmed: "protesters" and "protests" share a stem.
_PERSONS = re.compile(
    r"\b(?:protesters?|demonstrators?|civilians?|citizens?|residents?|Iranians?|Russians?"
    r"|users?|activists?|children|women|men|workers?|detainees?|prisoners?|students?)\b",
    re.I,
)
_COLLECTIVE = re.compile(r"(?:dozens|hundreds|thousands|millions)\b(?!\s+of\b)", re.I)
# "How many children ..." is counted by "a mother of two": a parent "of" a number.
_CHILDREN = frozenset(tokenize("children kids sons daughters"))
_PARENT_OF = re.compile(r"\b(?:mother|father|parent|mum|mom|dad)s?\s+of\s+$", re.I)


def _counts(text: str, number: re.Match[str], what: frozenset[str]) -> bool:
    """Whether the number is followed, within four words, by what is counted ("more than
    400 bodies", "thousands of protesters"), not by something else ("four years ago").
    People are counted by a kind of person too, or by a collective alone ("millions");
    children by a parent "of" the number ("a mother of two")."""
    words = " ".join(text[number.end() :].split()[:4])
    if any(named(t, frozenset(tokenize(words))) for t in what):
        return True
    if what & _CHILDREN and _PARENT_OF.search(text[max(0, number.start() - 20) : number.start()]):
        return True
    return bool(what & _PEOPLE) and bool(
        _PERSONS.search(words) or _COLLECTIVE.match(text, number.start())
    )


# A sentence that is itself a question ("Withdraw its troops from Ukraine and send them
# to Iran?") states nothing; it is the answer only to what someone asked, or whose words
# they were.
_ASKS_BACK = re.compile(r"\?[”\"’']?\s*$")


# "Roughly how many ...", "About how much ...": the same question as without.
_APPROXIMATELY = re.compile(
    r"^\W*(?:roughly|about|approximately|around|exactly|precisely)\s+(?=how\b)", re.I
)


def asked(question: str) -> str:
    """The question's words from its question word on: "Roughly how many people
    attended?" asks "how many people attended?"."""
    return _APPROXIMATELY.sub("", question)


def type_missing(question: Question, sentence: str, before: str = "") -> bool:
    """Whether the question needs a number, a date, a sum, an amount or a name that
    `sentence` (with `before`, the sentence before it, for a number or a date: "... in
    June. It was the first strike") does not hold. A name must be in the sentence itself
    (a list of countries just before is no capital), and so must a time or a length;
    capitalised words of the question do not count as the name asked for, and an age
    must be the named person's (`_age_of`). A sentence that is a question answers only
    "What did X ask?" or "Who asked?" (`_ASKS_BACK`)."""
    if _ASKS_BACK.search(sentence) and not (
        speaker.asks_who(question) or speaker.asks_what_said(question)
    ):
        return True
    if dated_otherwise(question.text, sentence):
        return True
    plain = asked(question.text)
    for asks, holds in _GATED:
        if asks.search(plain):
            text = sentence if holds in _OWN_SENTENCE else before + sentence
            own = set(question.terms)
            what = counted(question.text) if holds is NUMBER else frozenset()
            return not any(
                set(tokenize(m.group(0))) - own
                and (not what or _counts(text, m, what))
                and (holds is not AGE or _age_of(question, text, m))
                for m in holds.finditer(text)
            )
    return False


def dated_otherwise(question: str, sentence: str) -> bool:
    """Whether the question pins its event to a month or a year that `sentence` does not
    hold while it dates its own fact in another: "How many people were killed during
    Iran's November 2019 protests?" is not answered by "... killed across Iran on
    January 8 and 9"."""
    for pattern in (MONTH_NAME, YEAR_NUMBER):
        pinned = {m.group(0) for m in pattern.finditer(question)}
        stated = {m.group(0) for m in pattern.finditer(sentence)}
        if pinned and stated and not pinned & stated:
            return True
    return False


# An age given by a pronoun: "She is 25", "he was 30".
_PRONOUN_AGE = re.compile(r"\b(?:she|he)\s+(?:is|was|turned)\s+\d", re.I)


# "How old is the woman who lit a cigarette from the burning Khamenei portrait?": the
# person asked about is described, not named; the names that follow are not hers.
_OLD_DESCRIBED = re.compile(r"^\W*how old (?:is|was|are|were) (?:the|a|an|this|that)\b", re.I)


def _age_of(question: Question, text: str, age: re.Match[str]) -> bool:
    """Whether `age` in `text` is the age of whom the question names: within a few words
    of one of their names ("the death of 22-year-old Mahsa Amini" is not Nika
    Shakarami's age), or given by a pronoun ("She is 25"); any age when the question
    names nobody, or asks about someone it describes ("How old is the woman ...?")."""
    names = (
        set()
        if _OLD_DESCRIBED.match(question.text)
        else {t for phrase in question.phrases for t in phrase}
    )
    if not names or _PRONOUN_AGE.search(text, max(0, age.start() - 8), age.end()):
        return True
    near = text[max(0, age.start() - 40) : age.end() + 40]
    return bool(names & set(tokenize(near)))


# "Who is the current commander of ...", "What was the exchange rate of ...": the words
# naming the role or attribute asked for (a "name" is the answer itself, not a word of it).
_ROLE = re.compile(
    r"^\W*(?:who|what|which)\s+(?:is|was|are|were)\s+(?:the|a|an)\s+"
    r"((?:[\w-]+\s+){0,2}?[\w-]+)\s+(?:of|for|behind|at|in|on)\b",
    re.I,
)
# What "What was the X of Y" asks to explain rather than to name: "the likely purpose of
# the armoured vehicles" is answered by "presumably to suppress a mass civil uprising",
# which says neither "likely" nor "purpose".
_EXPLAINED = frozenset(
    tokenize(
        "purpose reason aim goal motive cause point significance meaning effect impact "
        "consequence result outcome"
    )
)
# "Who directed ...": an act, not an auxiliary nor a verb of saying (the speaker of a
# quote is often given by "he added" only: rag/answering/speaker.py).
_WHO_ACT = re.compile(r"^\W*who\s+([a-z]+ed)\b", re.I)
_SAYING = frozenset(
    tokenize(
        "said added warned claimed told wrote called asked argued noted stated insisted "
        "explained predicted commented suggested replied declared echoed dared urged "
        "vowed threatened boasted challenged promised pledged demanded accused blamed "
        "criticised criticized condemned denounced praised voiced expressed"
    )
)
# Verbs that carry no act of their own: "Who carried out the detention of Maduro?" asks
# who detained him ("the detention of ... Maduro by US forces").
_LIGHT = frozenset(tokenize("carried conducted performed"))
_SUPERLATIVE = re.compile(
    r"\b(?:largest|biggest|highest|lowest|longest|shortest|oldest|youngest|greatest"
    r"|deadliest|bloodiest|strongest|weakest|richest|poorest|smallest|fastest|closest)\b",
    re.I,
)


# What "How many X were VERBed" and "When was X VERBed" ask about: the passive act.
# A sentence counting X, or dating X, without it answers another question ("How many
# protesters have been sentenced to death?" is not "thousands of protesters were
# killed"). The participle follows the auxiliary in the first, the subject in the second.
_HOW_MANY_PASSIVE = re.compile(
    r"^\W*how many\b.*?\b(?:is|are|was|were|been|be)\s+(?:\w+ly\s+)?([a-z]+)\b", re.I
)
_WHEN_PASSIVE = re.compile(r"^\W*when\s+(?:is|are|was|were)\s+(.+)", re.I)


_PREFIXES = ("", "over", "under", "re", "un", "with", "out", "up")


def _participle(word: str) -> bool:
    """A past participle: "arrested", "overthrown" (a prefixed "thrown"); not "women",
    nor "Tehran" (whole words only, not any ending)."""
    word = word.lower()
    return (len(word) >= 5 and word.endswith("ed")) or any(
        word.startswith(p) and word[len(p) :] in IRREGULAR_PARTICIPLES for p in _PREFIXES
    )


def passive_act(question: str) -> list[str]:
    """The participle of "How many X have been VERBed" / "When was X VERBed", if any
    (the last one of a when-question: its subject may hold an adjective in -ed)."""
    m = _HOW_MANY_PASSIVE.match(question)
    if m and _participle(m.group(1)):
        return [m.group(1).lower()]
    m = _WHEN_PASSIVE.match(question)
    if m:
        words = [w for w in re.findall(r"[a-z]+", m.group(1)) if _participle(w)]
        return words[-1:]
    return []


def focus(question: Question) -> frozenset[str]:
    """The terms a sentence must hold to answer: the role or attribute of "Who/what is
    the X of Y" (without "name"; none when X is a purpose, a reason, an effect ...:
    `_EXPLAINED`), the act of "Who VERBed", the passive act of "How many
    X were VERBed" and "When was X VERBed", the superlatives."""
    words: list[str] = []
    role = _ROLE.search(question.text)
    if role and not set(tokenize(role.group(1).split()[-1])) & _EXPLAINED:
        words += [t for t in tokenize(role.group(1)) if t != "name"]
    act = _WHO_ACT.search(question.text)
    if act:
        words += [t for t in tokenize(act.group(1)) if t not in _SAYING | _LIGHT]
    words += [t for w in passive_act(question.text) for t in tokenize(w) if t not in _SAYING]
    words += [t for m in _SUPERLATIVE.finditer(question.text) for t in tokenize(m.group(0))]
    return frozenset(words)


# Superlatives that say the same ("the biggest customer" is "the largest buyer").
_SAME_SUPERLATIVE = [
    frozenset(tokenize("largest biggest greatest")),
    frozenset(tokenize("deadliest bloodiest")),
]


def _alternatives(term: str) -> frozenset[str]:
    """The terms that stand for a focus term: its forms ("write" -> wrote, written) and
    the superlatives that say the same."""
    same = [group for group in _SAME_SUPERLATIVE if term in group]
    return forms(term).union(*same)


def focus_missing(question: Question, text: str) -> bool:
    """Whether `text` lacks a term of the question's `focus` (in any form: "commander" /
    "commanders"; "biggest" / "largest")."""
    need = focus(question)
    if not need:
        return False
    present = frozenset(tokenize(text))
    return not all(any(named(f, present) for f in _alternatives(t)) for t in need)


def topic_missing(question: Question, text: str, everywhere: frozenset[str] = frozenset()) -> bool:
    """Whether `text` lacks every term of the question's `topic` but those in
    `everywhere` (terms most of the corpus holds, which tell no topic apart: "Iran" in
    articles about Iran)."""
    about = topic(question) - everywhere
    if not about:
        return False
    present = frozenset(tokenize(text))
    return not any(named(t, present) for t in about)


# "What did X say about T?", "What has X told reporters about T?": what the words are
# about. A sentence that gives X's words on something else answers another question.
_ABOUT = re.compile(
    rf"\b(?:{speaker.SAYING_FORMS}|think|thinks|thought)\b(?:\s+[\w’'-]+){{0,3}}?\s+about\s+(.+)",
    re.I,
)


def topic(question: Question) -> frozenset[str]:
    """The terms of T in "What did X say about T?", one of which the sentence's passage
    must hold (a quotation may name its topic sentences before its attribution): "What
    did Mariya Zakharova say about Iran's nationwide internet blackout?" is not answered
    by her words on colour revolutions."""
    m = _ABOUT.search(question.text)
    return frozenset(tokenize(m.group(1))) if m else frozenset()


# "What is the name of X ...?", "Which model of X ...?": the words of X follow.
_NAME_OF = re.compile(
    r"^\W*(?:what|which)\s+(?:(?:is|was|are|were)\s+(?:the\s+)?names?|models?|makes?)\s+of\s+"
    r"(?:the\s+|an?\s+)?(.+)"
    # "What is the transport corridor called?"
    r"|^\W*what\s+(?:is|was|are|were)\s+(?:the\s+|an?\s+)?(.+?)\s+(?:called|named)\W*$",
    re.I,
)
# Where the words of X end: a relative pronoun, an auxiliary, a preposition, an article.
_THING_ENDS = _COUNT_ENDS | {"who", "whom", "whose", "that", "which", "the", "a", "an", "as"}


def named_thing(question: str) -> str | None:
    """The head word of the thing whose name (or model) a question asks: its last word
    before a relative pronoun, an auxiliary, a preposition or an article ("the name of
    the UN secretary-general who ..." -> "secretary-general"; "Psiphon's director of
    ..." -> "director"). A capitalised word that a verb in -ed follows starts a clause
    ("the transport corridor Lavrov cited" -> "corridor"); one that a noun follows is
    part of X ("the short-lived Soviet state in ..." -> "state")."""
    m = _NAME_OF.match(question)
    if not m:
        return None
    words = re.findall(r"[\w’'-]+", m.group(1) or m.group(2))
    head = None
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word.lower() in _THING_ENDS:
            break
        if head and word[0].isupper() and following.endswith("ed"):
            break
        head = word
    return head.lower() if head else None


_WORD = re.compile(r"[\w’'.-]*\w")
# What may stand between a thing and its name: "the tanker Marinera", "the
# secretary-general, Antonio Guterres", "a corridor called Rasht-Astara".
_JOIN = re.compile(r"[\s,]*(?:(?:named|called|known as)\s+)?")
# Capitalised for its place at a sentence's start, not as a name.
_DETERMINERS = frozenset({"the", "a", "an", "this", "that", "its", "his", "her", "their"})


def _new_name(word: str, own: frozenset[str]) -> bool:
    """A capitalised word (or a model number, "Mi-28") that the question does not hold."""
    if not word or word.lower() in _DETERMINERS:
        return False
    if not (word[0].isupper() or any(ch.isdigit() for ch in word)):
        return False
    terms = set(tokenize(word))
    return bool(terms) and not terms <= own


def name_withheld(question: Question, articles: Iterable[str]) -> bool:
    """Whether the `articles` (those of the top passages) mention the thing whose name
    the question asks ("What is the name of the UN secretary-general ...?") but none
    names it: no mention of its head word has a new name next to it, before or after
    ("the Marinera tanker", "the North-South Transport Corridor", "the tanker Marinera",
    "Secretary-General, Antonio Guterres"), as "The UN secretary-general said ..." has
    not. Near-topic questions ask for such a detail that the articles omit; when no
    article mentions the thing, the other gates decide."""
    head = named_thing(question.text)
    if head is None:
        return False
    own = frozenset(question.terms)
    mentions = {_mention(head, own, article) for article in articles}
    return "unnamed" in mentions and "named" not in mentions


@lru_cache(maxsize=64)
def _mention(head: str, own: frozenset[str], article: str) -> str:
    """How `article` mentions the thing of head word `head`: "named" (a new name next
    to a mention), "unnamed" (mentions, none named) or "absent" (cached: every candidate
    sentence of a question asks the same)."""
    stems = set(tokenize(head))
    words = list(_WORD.finditer(article))
    mentioned = False
    for i, word in enumerate(words):
        if set(tokenize(word.group(0))) != stems:
            continue
        mentioned = True
        # The capitalised words just before it ("the North-South Transport Corridor").
        j = i - 1
        while (
            j >= 0
            and i - j <= 3
            and re.fullmatch(r"[\s,]*", article[words[j].end() : words[j + 1].start()])
        ):
            if _new_name(words[j].group(0), own):
                return "named"
            if not words[j].group(0)[0].isupper():
                break
            j -= 1
        after = _WORD.match(article, _JOIN.match(article, word.end()).end())
        if after and _new_name(after.group(0), own):
            return "named"
    return "unnamed" if mentioned else "absent"
