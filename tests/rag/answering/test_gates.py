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
        ("Roughly how many people attended?", {"peopl", "attend"}),
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
        # A share is an amount.
        ("What share of the oil does China buy?", "China buys most of the oil.", "", True),
        ("What share of the oil does China buy?", "China buys around 80% of it.", "", False),
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
        # An age, not any number; the named person's, in the sentence itself.
        ("How old is the woman?", "She lives in Canada since 2019.", "", True),
        (
            "How old was Mahsa Amini?",
            "It followed the death of 22-year-old Mahsa Amini.",
            "",
            False,
        ),
        (
            "How old was Nika Shakarami?",
            "It recalled Nika Shakarami, a young protester.",
            "It followed the death of 22-year-old Mahsa Amini. ",
            True,
        ),
        ("How old was Nika Shakarami?", "Nika Shakarami, 16, was killed.", "", False),
        (
            "How old was Nika Shakarami?",
            "She was 16 when she was killed.",
            "Nika Shakarami was a protester. ",
            False,
        ),
        # A date need not come with the question's names: articles write "the
        # country" for Iran ("Protests ... erupted on December 28 ... across the
        # country").
        (
            "When did the protests in Iran begin?",
            "Protests erupted on December 28 and spread across the country.",
            "",
            False,
        ),
        (
            "How old was Nika Shakarami?",
            "It followed the death of 22-year-old Mahsa Amini.",
            "",
            True,
        ),
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
        # "Where" needs a name the question does not hold: "in the coming days" is when.
        (
            "Where will Araghchi and Witkoff meet?",
            "Araghchi and Witkoff may meet in the coming days.",
            "",
            True,
        ),
        ("Where did Assad go into exile?", "Assad went into exile in Moscow.", "", False),
        # ... and so does "in which country", but not "which country" as the subject.
        ("In which country does Smagin live?", "Smagin has lived abroad since.", "", True),
        ("In which country does Smagin live?", "Smagin now lives in Turkey.", "", False),
        ("Which country froze its membership?", "One member – Armenia – froze it.", "", False),
        # "On what date", "in which month" ask for a date as "when" does.
        ("On what date were the tankers seized?", "The tankers were seized.", "", True),
        ("On what date were the tankers seized?", "They were seized on January 7.", "", False),
        ("In which month did he resign?", "He resigned in protest.", "", True),
        # ... of their granularity: a year is no date, a day is no year.
        ("On what date did Mahsa Amini die?", "She died in 2022.", "", True),
        ("On which day did Markov post it?", "Markov wrote on Sunday.", "", False),
        ("On what date was it published?", "date 2026-01-20 The loud cheers ...", "", False),
        ("In which month did he resign?", "He resigned in 2022.", "", True),
        ("In which month did he resign?", "He resigned in February.", "", False),
        ("In what year did Russia enter Syria?", "Russia entered Syria on Monday.", "", True),
        ("In what year did Russia enter Syria?", "Russia entered Syria in 2015.", "", False),
        # A sentence that dates its fact in another month than the question's.
        (
            "How many people were killed in the November 2019 protests?",
            "At least 2,000 people were killed on January 8.",
            "",
            True,
        ),
        (
            "How many people were killed in the November 2019 protests?",
            "At least 300 people were killed in November 2019.",
            "",
            False,
        ),
        # "Roughly how many" asks "how many".
        ("Roughly how many people attended?", "The rally was held on Monday.", "", True),
        ("Roughly how many people attended?", "About 5,000 people attended.", "", False),
        # A sentence that is a question states nothing, but is what someone asked.
        ("Why did Russia send troops?", "Send its troops to Iran?", "", True),
        ("What did Bondarev ask about the troops?", "Send its troops to Iran?", "", False),
        ("Who asked about sending troops?", "“Send its troops to Iran?”", "", False),
        # "What is X called?" asks for a name too.
        ("What is the transport corridor called?", "Lavrov listed transport corridors.", "", True),
        (
            "What is the transport corridor called?",
            "It runs along the North-South Transport Corridor.",
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
        # People are counted by a kind of person, or by a collective with no noun of its
        # own; not by a number of other things.
        ("How many people were killed?", "Thousands of protesters were killed.", "", False),
        ("How many people were cut off?", "It left millions unable to talk.", "", False),
        ("How many people were killed?", "Thousands of tanks were lost.", "", True),
        ("How many people were killed?", "Millions of dollars were spent.", "", True),
        # Children are counted by a parent "of" the number.
        ("How many children does Irina have?", "Irina, a mother of two, said so.", "", False),
        ("How many children does Irina have?", "Irina, one of two speakers, said so.", "", True),
        # ... as written: "protests" shares the stem of "protesters".
        ("How many people were detained?", "It recalls the 2022 protests.", "", True),
        ("How many tanks were lost?", "It left millions unable to talk.", "", True),
        # The age of someone the question describes rather than names: the names that
        # follow ("Khamenei") are not that person's.
        (
            "How old is the woman who burned the Khamenei portrait?",
            "The woman posts as Morticia Addams and, per her posts, is 25.",
            "",
            False,
        ),
        (
            "How old was Khamenei when he burned the portrait?",
            "The woman posts as Morticia Addams and, per her posts, is 25.",
            "",
            True,
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
        # A speech act ("dared", "urged") is a verb of saying too.
        ("Who dared Trump to come and see?", set()),
        # So is blaming: "X said: “... provocateurs ...”" says who blamed them.
        ("Who blamed armed provocateurs for the violence?", set()),
        # "Voiced outrage" is what "expressed outrage" says.
        ("Who voiced outrage that the office kept posting?", set()),
        # A light verb carries no act: the detention is what is asked about.
        ("Who carried out the detention of Maduro?", set()),
        ("Which Iranian city saw the largest protest?", {"largest"}),
        ("Who is Nikita Smagin?", set()),
        # A purpose, a reason, an effect is explained, not named.
        ("What was the likely purpose of the armoured vehicles?", set()),
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
        # A superlative that says the same.
        ("Which country is the biggest customer for oil?", "China, its largest customer.", False),
        ("Which was the bloodiest day?", "The deadliest day was Friday.", False),
        ("Which country is the biggest customer for oil?", "China, its oldest customer.", True),
        ("Who is Nikita Smagin?", "Nikita Smagin is an expert.", False),
        # Any form of the act: the noun "overthrow", the base "build" of "built".
        ("When was Bashar al-Assad overthrown?", "The overthrow of Assad in 2024.", False),
        ("When was the deal built?", "They build it in 2020.", False),
        ("How many protesters have been sentenced?", "Thousands of protesters were killed.", True),
    ],
)
def test_focus_missing(question: str, text: str, missing: bool) -> None:
    assert gates.focus_missing(ask(question), text) is missing


@pytest.mark.parametrize(
    ("question", "topic"),
    [
        (
            "What did Mariya Zakharova say about Iran's nationwide internet blackout?",
            {"iran", "nationwid", "internet", "blackout"},
        ),
        ("What has Ahmed al-Shalah said about the protests in Iran?", {"protest", "iran"}),
        # Up to three words between the verb and "about".
        ("What did Smagin tell Al Jazeera about the Kremlin's mood?", {"kremlin", "mood"}),
        # No "about": the words asked for are any.
        ("What did Smagin say?", set()),
        ("What is the report about?", set()),
    ],
)
def test_topic(question: str, topic: set) -> None:
    assert gates.topic(ask(question)) == topic


ZAKHAROVA = "What did Mariya Zakharova say about Iran's nationwide internet blackout?"


@pytest.mark.parametrize(
    ("text", "everywhere", "missing"),
    [
        # Her words on something else.
        ("Zakharova cited rhetoric about colour revolutions.", frozenset(), True),
        # One term of the topic is enough, in any form.
        ("Zakharova called the blackouts a provocation.", frozenset(), False),
        # "Iran" counts when the corpus does not hold it everywhere ...
        ("Zakharova said Iran would cope.", frozenset(), False),
        # ... and not when it does.
        ("Zakharova said Iran would cope.", frozenset({"iran"}), True),
        ("Zakharova said the internet in Iran was cut.", frozenset({"iran"}), False),
    ],
)
def test_the_topic_of_what_was_said_must_be_in_the_passage(
    text: str, everywhere: frozenset[str], missing: bool
) -> None:
    assert gates.topic_missing(ask(ZAKHAROVA), text, everywhere) is missing


@pytest.mark.parametrize(
    ("question", "head"),
    [
        ("What is the name of the UN secretary-general who said so?", "secretary-general"),
        ("What were the names of the Russian tankers the US seized?", "tankers"),
        ("What is the name of Psiphon's director of Washington operations?", "director"),
        ("Which model of attack helicopter has Russia delivered?", "helicopter"),
        # A capitalised word that a verb in -ed follows starts a clause ...
        ("What is the name of the transport corridor Lavrov cited as a project?", "corridor"),
        # ... one that a noun follows is part of the thing.
        ("What was the name of the short-lived Soviet state in Gilan?", "state"),
        ("Who is the UN secretary-general?", None),
        ("What is the transport corridor Lavrov cited called?", "corridor"),
    ],
)
def test_named_thing_is_the_head_of_what_is_named(question: str, head: str | None) -> None:
    assert gates.named_thing(question) == head


_UN = "What is the name of the UN secretary-general?"
_CORRIDOR = "What is the name of the transport corridor?"


@pytest.mark.parametrize(
    ("question", "article", "withheld"),
    [
        # Mentioned, never named.
        (_UN, "The UN secretary-general said he was shocked.", True),
        (_CORRIDOR, "Lavrov listed transport corridors and the Bushehr plant.", True),
        # A new name next to it, after (a comma or "called" between) or before.
        (_UN, "The UN Secretary-General, Antonio Guterres, said so.", False),
        (_UN, "The UN secretary-general called Guterres said so.", False),
        (_CORRIDOR, "They opened the North-South Transport Corridor.", False),
        ("What were the names of the tankers?", "the Marinera tanker sailed", False),
        ("Which model of helicopter was delivered?", "Russia delivered Mi-28 helicopters.", False),
        # The question's own words, a sentence's end or a determiner are no name.
        ("What were the names of the Russian tankers?", "It seized Russian tankers.", True),
        ("What were the names of the tankers?", "It seized tankers. Iran protested.", True),
        ("What were the names of the tankers?", "The tankers sailed.", True),
        # An article that never mentions the thing leaves it to the other gates.
        (_UN, "The protests spread to Tehran.", False),
        ("Who is the UN secretary-general?", "The UN secretary-general said so.", False),
    ],
)
def test_name_withheld_when_the_article_mentions_the_thing_unnamed(
    question: str, article: str, withheld: bool
) -> None:
    assert gates.name_withheld(ask(question), [article]) is withheld


def test_a_name_withheld_in_one_article_and_given_in_none_is_withheld() -> None:
    unnamed = "The UN secretary-general said he was shocked."
    named = "The UN Secretary-General, Antonio Guterres, said so."
    elsewhere = "The protests spread to Tehran."
    assert gates.name_withheld(ask(_UN), [elsewhere, unnamed]) is True
    assert gates.name_withheld(ask(_UN), [unnamed, named]) is False
    assert gates.name_withheld(ask(_UN), [elsewhere]) is False


@pytest.mark.parametrize(
    ("question", "sentence", "otherwise"),
    [
        (
            "How many people were killed during Iran's November 2019 protests?",
            "At least 2,000 people have been killed across Iran on January 8 and 9.",
            True,
        ),
        (
            "How many people were killed during Iran's November 2019 protests?",
            "In November 2019, hundreds were killed.",
            False,
        ),
        # No date in the sentence: nothing contradicts the question's.
        ("How many people were killed in November?", "Hundreds were killed.", False),
        # A question that pins no date.
        ("When did the protests begin?", "They began on January 8.", False),
        ("What did Russia do in 2015?", "Russia entered Syria in 2015 and left in 2024.", False),
        ("What did Russia do in 2015?", "In 2024 Russia left Syria.", True),
    ],
)
def test_dated_otherwise(question: str, sentence: str, otherwise: bool) -> None:
    assert gates.dated_otherwise(question, sentence) is otherwise
