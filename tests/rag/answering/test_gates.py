"""Gates (rag/answering/gates.py): what a sentence must hold to answer a question at all.
Exact pass/fail on hand-written sentences."""

from __future__ import annotations

import pytest

from rag.answering import gates
from tests.rag.answering.questions import ask


@pytest.mark.parametrize(
    ("question", "counted"),
    [
        ("How many S-400 batteries has Russia delivered to Iran?", {"batteri"}),
        ("How many people live in Iran?", {"peopl", "live"}),
        (
            "How many Iranian security personnel have been killed?",
            {"iranian", "secur", "personnel"},
        ),
        ("Why is it hard to know how many people attended?", set()),
        # "members of X" counts X.
        ("How many members of the security forces have died?", {"secur", "forc"}),
    ],
)
def test_counted_is_what_how_many_counts(question: str, counted: set) -> None:
    assert gates.counted(question) == counted


@pytest.mark.parametrize(
    ("question", "sentence", "before", "missing"),
    [
        # A number of what is counted.
        ("How many bodies did they see?", "They saw more than 400 bodies there.", "", False),
        (
            "How many protesters were killed?",
            "The toll includes thousands of protesters.",
            "",
            False,
        ),
        # A number of something else is no answer.
        (
            "How many Shahed drones has Iran delivered?",
            "Shahed drones have been used for four years.",
            "",
            True,
        ),
        ("How many S-400 batteries were sold?", "Russia sold S-400 systems in 2021.", "", True),
        # The number may be in the sentence before.
        (
            "How many people live in Iran?",
            "It is under sanctions.",
            "Iran has 90 million people. ",
            False,
        ),
        # A sum of money for "cost", "pay": a share is not one.
        ("What price per barrel does China pay?", "China buys around 80% of the oil.", "", True),
        ("How much did the plant cost to build?", "It cost $2 billion.", "", False),
        ("How much did the plant cost to build?", "It took 20 years to build.", "", True),
        # Any amount for another "how much".
        ("How much of Iran's oil does China buy?", "China buys around 80% of the oil.", "", False),
        # A date for "when"; the question's own words are not it.
        ("When did the protests begin in December?", "The protests began in December.", "", True),
        ("When did the protests begin?", "The protests began on December 28.", "", False),
        # A decade or a century is a date too; an ordinal without "century" is not.
        ("When did Moscow try it?", "Moscow tried it in the early 1920s.", "", False),
        ("When did Moscow try it?", "In the 20th century, Moscow tried it.", "", False),
        ("When did Moscow try it?", "Moscow tried it for the 20th time.", "", True),
        # A place after a lower-case word; not a label at the start.
        ("What is the capital of Australia?", "DESIGN Human capital cost analysis.", "", True),
        ("What is the capital of Iran?", "Protests reached the capital, Tehran.", "", False),
        # "How old" a number; "how long" a time or a length, in the sentence itself.
        ("How old is the woman?", "She is 25 and lives in Canada.", "", False),
        ("How old is the woman?", "She lives in Canada.", "", True),
        ("How long did Moscow stay silent?", "For almost two weeks, Moscow was silent.", "", False),
        ("How long is the border?", "The border runs for 700 kilometres.", "", False),
        (
            "How long did Moscow stay silent?",
            "Analysts say the Kremlin is focused on its interests.",
            "Russia has had centuries of ties with Tehran.",
            True,
        ),
        # "The name of X" needs a name, not X's role alone.
        (
            "What is the name of the UN secretary-general?",
            "The UN secretary-general said he was shocked.",
            "",
            True,
        ),
        (
            "What is the name of the UN secretary-general?",
            "The post is held by Antonio Guterres.",
            "",
            False,
        ),
        # A number of what "members of" counts.
        (
            "How many members of the security forces have died?",
            "More than 100 security personnel have died.",
            "",
            False,
        ),
        # Questions of other kinds pass.
        ("Why did Moscow stay silent?", "Moscow stayed silent.", "", False),
    ],
)
def test_type_missing(question: str, sentence: str, before: str, missing: bool) -> None:
    assert gates.type_missing(ask(question), sentence, before) is missing


@pytest.mark.parametrize(
    ("question", "focus"),
    [
        ("Who is the current commander of the Revolutionary Guards?", {"current", "command"}),
        # "name" is the answer itself, not a word it must hold.
        ("What is the real name of the woman?", {"real"}),
        ("Who directed the film Malèna?", {"direct"}),
        # A verb of saying: "he added" names the speaker elsewhere.
        ("Who warned that all bases would be targets?", set()),
        ("Which Iranian city saw the largest protest?", {"largest"}),
        ("Who is Nikita Smagin?", set()),
        # The passive act of "how many ... were VERBed" and "when was X VERBed".
        ("How many Iranian protesters have been sentenced to death?", {"sentenc"}),
        ("How many Russian advisers are stationed in Iran?", {"station"}),
        ("When was Bashar al-Assad overthrown in Syria?", {"overthrown"}),
        ("When was the woman behind the viral image arrested?", {"arrest"}),
        ("When was the deal built?", {"built"}),
        # Not a participle: a name ending like one, a plural, an active verb.
        ("When was Tehran hit?", set()),
        ("When were women allowed to vote?", {"allow"}),
        ("How many people live in Iran?", set()),
        ("When did the protests begin?", set()),
    ],
)
def test_focus(question: str, focus: set) -> None:
    assert gates.focus(ask(question)) == focus


@pytest.mark.parametrize(
    ("question", "text", "missing"),
    [
        ("Who is the current commander of the Guards?", "Media affiliated with the Guards.", True),
        ("Who is the current commander of the Guards?", "Its current commander, X, spoke.", False),
        (
            "Who directed the film Malèna?",
            "The final scene of Malèna, starring Monica Bellucci.",
            True,
        ),
        ("Who directed the film Malèna?", "Malèna, directed by Giuseppe Tornatore.", False),
        ("Which city saw the largest protest?", "Protests resumed in Tehran.", True),
        ("Who is Nikita Smagin?", "Nikita Smagin is an expert.", False),
        # Any form of the act: the noun "overthrow", the base "build" of "built".
        ("When was Bashar al-Assad overthrown?", "The overthrow of Assad in 2024.", False),
        ("When was the deal built?", "They build it in 2020.", False),
        ("How many protesters have been sentenced?", "Thousands of protesters were killed.", True),
    ],
)
def test_focus_missing(question: str, text: str, missing: bool) -> None:
    assert gates.focus_missing(ask(question), text) is missing
