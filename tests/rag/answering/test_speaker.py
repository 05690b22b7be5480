"""Speaker and quote resolution (rag/answering/speaker.py) on a hand-written file: which
sentences a who-question or a "what did X say" question widens to. Pure string work on
the chunker's own sentence spans, exact expected spans."""

from __future__ import annotations

import pytest

from rag.answering import speaker
from tests.rag.answering.files import FileView
from tests.rag.answering.questions import ask

PARAGRAPHS = [
    "Parliament speaker Mohammad Ghalibaf addressed a rally on Monday.",
    "“We have heard your threats,” Ghalibaf told the crowd. “The defenders will teach "
    "you a lesson.”",
    "“All your bases will be our targets,” he added. “Come and see.”",
    "The outlet Nexta TV commented: “This isn’t shock value. It’s a blunt gesture.”",
    "“The protests will be quelled. Reforms will follow,” Markov wrote on Telegram.",
    "The woman posts under the handle Morticia Addams. She lives in Canada. In one post, "
    "she wrote: “Forgive me, Mother Iran.”",
    "“Ghalibaf has decided to stay. He has not decided for how long,” the sources said.",
    "Markov told a rally on Monday, addressing Ghalibaf directly.",
    "A former Russian diplomat says the threats of President Trump were empty.",
    "“Why rattle the sabers?” Boris Bondarev, who quit in protest, told Al Jazeera.",
    "Expert Amin Sabeti told Iran International that the blackout has severed access.",
    "“This is the most extreme shutdown we have had,” Sabeti said.",
    "A senior analyst says Moscow is cautious. Nikita Smagin told Al Jazeera it waits.",
    "“Iran? What Iran? We are busy trying to survive. My son is sad. My husband pays the "
    "mortgage. Don’t bother me,” Irina told Al Jazeera.",
    "Zakharova spoke first. The crowd cheered. Later she wrote: “Enough.”",
    "Ghalibaf told the rally: “We are ready.”",
    "“All American bases will be targets,” he added. “Come and see.”",
    "On Tuesday, President Trump urged Iranians to “take over the institutions.”",
    "On January 2, he wrote: “We are locked and loaded.”",
    "Another clip shows an elderly woman chanting slogans. In the footage, she says: “I am "
    "not afraid.”",
    "Monitoring group NetBlocks said connectivity remained near zero.",
    "Reactions intensified. The UN secretary-general said he was “shocked” and urged restraint.",
    "The woman posts on X as Morticia Addams. She has said she was arrested in 2019.",
    "Another clip shows an elderly woman chanting. In the footage, she says: “I am not "
    "afraid. I have been dead for 47 years.”",
    "In a message released Sunday, Reza Pahlavi described the moment as a new phase.",
    "The Kremlin is confident the protests have peaked, according to one of Russia’s "
    "leading Iran experts.",
    "Nikita Smagin told Al Jazeera that the embassy has informed Moscow.",
]


@pytest.fixture(scope="module")
def view() -> FileView:
    return FileView.of(PARAGRAPHS)


def span_text(view: FileView, span: speaker.Span) -> str:
    return view.span_text(span)


def test_the_sentences_are_what_the_chunker_splits(view: FileView) -> None:
    counts = [len(c.sentences) for c in view.chunks]
    assert counts == [
        1,
        2,
        2,
        2,
        2,
        3,
        2,
        1,
        1,
        2,
        1,
        1,
        2,
        6,
        3,
        1,
        2,
        1,
        1,
        2,
        1,
        2,
        2,
        3,
        1,
        1,
        1,
    ]


def test_a_quote_after_the_naming_sentence_takes_both(view: FileView) -> None:
    q = ask("Who said the defenders would teach a lesson?")
    span = speaker.resolve_speaker(view, q, 1, 1)
    assert (span.chunk_id, span.first, span.last, span.support) == (1, 0, 1, None)
    assert span_text(view, span).startswith("“We have heard your threats,” Ghalibaf told")


def test_he_added_in_the_next_paragraph_takes_the_naming_sentence_before(view: FileView) -> None:
    q = ask("Who warned that all bases would be targets?")
    span = speaker.resolve_speaker(view, q, 2, 0)
    # The sentence that names the speaker comes first; the quote's passage supports it.
    assert (span.chunk_id, span.first, span.last, span.support) == (1, 0, 0, 2)
    assert "Ghalibaf told the crowd" in span_text(view, span)


def test_a_quote_whose_attribution_follows_runs_on_to_it(view: FileView) -> None:
    q = ask("Who said the protests will be quelled?")
    span = speaker.resolve_speaker(view, q, 4, 0)
    assert (span.chunk_id, span.first, span.last) == (4, 0, 1)
    assert span_text(view, span).endswith("Markov wrote on Telegram.")


def test_the_speaker_named_two_sentences_back_is_found(view: FileView) -> None:
    q = ask("Who wrote Forgive me, Mother Iran?")
    span = speaker.resolve_speaker(view, q, 5, 2)
    assert (span.chunk_id, span.first, span.last) == (5, 0, 2)
    assert "Morticia Addams" in span_text(view, span)


def test_a_sentence_that_names_its_speaker_stays_alone(view: FileView) -> None:
    q = ask("Who addressed a rally on Monday?")
    assert speaker.resolve_speaker(view, q, 0, 0) == speaker.Span(0, 0, 0)


def test_what_did_x_say_takes_the_quote_after_the_lead_in(view: FileView) -> None:
    q = ask("What did Nexta TV say about the image?")
    assert speaker.asks_what_said(q)
    span = speaker.extend_quote(view, q, 3, 0)
    assert (span.first, span.last) == (0, 1)
    assert span_text(view, span).endswith("It’s a blunt gesture.”")


def test_what_did_x_say_takes_a_quote_from_its_start(view: FileView) -> None:
    q = ask("What did Markov write on Telegram?")
    span = speaker.extend_quote(view, q, 4, 1)
    assert (span.first, span.last) == (0, 1)


def test_who_and_what_said_questions_are_told_apart() -> None:
    assert speaker.asks_who(ask("Who said it?"))
    assert not speaker.asks_who(ask("What did Markov say?"))
    # "Which/what <role>" asks for a person too; "which country" does not.
    assert speaker.asks_who(ask("Which Russian official drew on the Kremlin line?"))
    assert speaker.asks_who(ask("What analysts argued that Moscow can do little?"))
    assert not speaker.asks_who(ask("Which country buys Iran's oil?"))
    assert speaker.asks_who(ask("Which Russian woman kept her surname private?"))
    assert speaker.asks_who(ask("Which women spoke to Al Jazeera?"))
    assert not speaker.asks_who(ask("What did the foreign minister say about the talks?"))
    assert not speaker.asks_who(ask("What is the minister's view of the talks?"))
    # "who" after a phrase that sets the scene; not a relative clause about X.
    assert speaker.asks_who(ask("According to the commentary, who greeted the idea?"))
    assert speaker.asks_who(ask("In a clip posted on Monday, who was heard saying it?"))
    assert not speaker.asks_who(ask("What did Smagin, who quit the ministry, say?"))
    assert speaker.asks_who(ask("Which X user says she was arrested in 2019?"))
    # Whoever the subject of a verb of saying, "which ... said" asks who said it.
    assert speaker.asks_who(ask("Which Russian interviewee said her son was sad?"))
    assert speaker.asks_who(ask("What Iranian outlet wrote that the toll had risen?"))
    assert not speaker.asks_who(ask("What did the interviewee say about her son?"))
    assert not speaker.asks_who(ask("What is said about the talks?"))
    assert not speaker.asks_who(ask("What kind of outlet claimed that agents armed them?"))
    assert speaker.asks_who(ask("According to which expert is the Kremlin confident?"))
    assert not speaker.asks_who(ask("According to the expert, what is the Kremlin sure of?"))
    assert speaker.asks_what_said(ask("How did Nexta TV describe the gesture?"))
    assert speaker.asks_what_said(ask("What rhetorical questions did Bondarev ask?"))
    assert not speaker.asks_what_said(ask("What did the protesters do after the blackout?"))
    assert not speaker.asks_what_said(ask("When did the protests begin?"))
    # "How did X react / respond" asks for X's words too.
    assert speaker.asks_what_said(ask("How did Irina first react when asked about Iran?"))
    assert speaker.asks_what_said(ask("How did Tehran respond to the threats?"))
    assert not speaker.asks_what_said(ask("How did the protests end?"))
    # "According to X, what ...": what X's words say; not "According to X, when ...".
    assert speaker.asks_what_said(ask("According to J.K. Rowling, what do they not care about?"))
    assert not speaker.asks_what_said(ask("According to the report, when did it begin?"))


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("“All your bases will be our targets,” he added.", True),
        # An auxiliary or an adverb between the pronoun and the verb.
        ("She has said she was arrested in 2019.", True),
        ("He also warned of a response.", True),
        # A pronoun inside the quoted words attributes nothing.
        ("“We have heard that you have threatened Iran,” Ghalibaf told a rally.", False),
        ("“Come and see.”", True),
        ("“We have heard your threats,” Ghalibaf told the crowd.", False),
        ("The outlet Nexta TV commented: “This isn’t shock value.", False),
    ],
)
def test_refers_back(text: str, back: bool) -> None:
    assert speaker.refers_back(text) is back


@pytest.mark.parametrize(
    ("question", "who"),
    [
        ("What did Ali Larijani say about Trump's warnings?", {"ali", "larijani"}),
        ("What did Araghchi add about negotiations?", {"araghchi"}),
        # Words naming what was said may come between "what" and the auxiliary.
        ("What rhetorical questions did Boris Bondarev ask?", {"bori", "bondarev"}),
        # X is no name: no preference, the scores decide.
        ("What did the minister say?", set()),
        ("Who said it?", set()),
        # A possessive before a role is whose X is, not X.
        ("What did Iran's parliament speaker say about an attack?", set()),
        ("What does the piece on Putin's silence say about it?", set()),
        ("What did Trump's envoy Steve Witkoff say?", {"steve", "witkoff"}),
    ],
)
def test_sayer_is_the_name_between_the_auxiliary_and_the_verb(question: str, who: set) -> None:
    assert speaker.sayer(ask(question)) == who


def test_said_as_matches_the_forms_of_the_verb_asked_for() -> None:
    added = speaker.said_as(ask("What did Ghalibaf add about the bases?"))
    assert added is not None and added.search("he added.") and not added.search("he said.")
    told = speaker.said_as(ask("What did Ghalibaf tell the crowd?"))
    assert told is not None and told.search("Ghalibaf told the crowd")
    # "say" is any attribution: no verb to prefer; "describe" / "characterise" ask
    # what X called it, not how.
    assert speaker.said_as(ask("What did Ghalibaf say?")) is None
    assert speaker.said_as(ask("How did Zakharova characterise the threat?")) is None
    # ... nor does "react": the reaction is what was said, however it is reported.
    assert speaker.said_as(ask("How did Irina react to the question?")) is None
    replied = speaker.said_as(ask("What did Araghchi reply to Trump?"))
    assert replied is not None and replied.search("he replied") and not replied.search("he said")
    assert speaker.asks_what_said(ask("How did Zakharova characterise the threat?"))


@pytest.mark.parametrize(
    ("text", "named"),
    [
        # A verb of saying in the present names the speaker ...
        ("Analysts like Smagin note that Moscow “can hardly do anything”.", True),
        ("Smagin argues that Moscow is cautious.", True),
        # ... a noun that looks like one does not ("Soviet states").
        ("She drew on the mantra of the former Soviet states of Georgia and Ukraine.", False),
        # A name inside the quoted words is not the speaker's.
        ("Threaten President Trump to lose interest in the ‘deal’?” he asked.", False),
        ("“Threaten President Trump?” he asked.", False),
    ],
)
def test_names_speaker(text: str, named: bool) -> None:
    assert speaker.names_speaker(text, ask("Who argued that Moscow can do little?")) is named


@pytest.mark.parametrize(
    ("cid", "sentence", "said"),
    [
        # Ghalibaf's quote, with his name in the sentence.
        (1, 0, True),
        # "..., he added." first in its paragraph: the name is in the paragraph before.
        (2, 0, True),
        # A sentence that only describes him gives none of his words.
        (0, 0, False),
        # Markov's words, not Ghalibaf's.
        (4, 1, False),
    ],
)
def test_said_by_finds_the_sentences_giving_xs_words(
    view: FileView, cid: int, sentence: int, said: bool
) -> None:
    assert speaker.said_by(view, cid, sentence, frozenset({"ghalibaf"})) is said


@pytest.mark.parametrize(
    ("cid", "sentence"),
    [
        # X named inside a quotation whose attribution, a sentence later, is others'.
        (6, 0),
        (6, 1),
        # X named as the one spoken to.
        (7, 0),
    ],
)
def test_said_by_is_not_words_about_x(view: FileView, cid: int, sentence: int) -> None:
    assert speaker.said_by(view, cid, sentence, frozenset({"ghalibaf"})) is False


@pytest.mark.parametrize(
    ("question", "cid", "named"),
    [
        # "A former Russian diplomat says ..." + "“Why rattle the sabers?” Boris Bondarev
        # ... told Al Jazeera.": named after the quotation that opens the next passage
        # ("President Trump" in the claim is not its speaker).
        (
            "Which former Russian diplomat said the threats were empty?",
            8,
            speaker.Span(9, 1, 1, 8),
        ),
        # "..., according to one of Russia's leading Iran experts." + "Nikita Smagin told
        # ...": named in the next passage's first sentence.
        (
            "According to which Russian expert is the Kremlin confident?",
            25,
            speaker.Span(26, 0, 0, 25),
        ),
    ],
)
def test_a_described_speaker_is_named_in_the_next_passage(
    view: FileView, question: str, cid: int, named: speaker.Span
) -> None:
    q = ask(question)
    assert speaker.resolve_speaker(view, q, cid, 0, nearby=(cid, cid + 1)) == named
    # ... which must be among the candidate passages; else the claim stays as it is.
    assert speaker.resolve_speaker(view, q, cid, 0) == speaker.Span(cid, 0, 0)


def test_reported_speech_is_the_answer_not_a_lead_in(view: FileView) -> None:
    q = ask("What did Amin Sabeti tell Iran International about the blackout?")
    assert speaker.extend_quote(view, q, 10, 0, nearby=(10, 11)) == speaker.Span(10, 0, 0)


def test_a_described_speaker_named_in_the_next_sentence_takes_both(view: FileView) -> None:
    q = ask("Which analyst said Moscow is cautious?")
    assert speaker.resolve_speaker(view, q, 12, 0) == speaker.Span(12, 0, 1)


def test_a_long_quotation_is_taken_from_its_start(view: FileView) -> None:
    # Six sentences: the attribution that closes it reaches back past REACH.
    q = ask("What did Irina say about Iran?")
    span = speaker.extend_quote(view, q, 13, 5)
    assert (span.first, span.last) == (0, 5)
    assert span_text(view, span).startswith("“Iran? What Iran?")


def test_a_sentence_inside_a_quotation_is_the_words_of_its_speaker(view: FileView) -> None:
    assert speaker.enclosing_quotation(view, 13, 4) == (0, 5)
    # Opening or closing it is not lying inside it.
    assert speaker.enclosing_quotation(view, 13, 0) is None
    assert speaker.enclosing_quotation(view, 13, 5) is None
    assert speaker.said_by(view, 13, 4, frozenset({"irina"})) is True
    assert speaker.said_by(view, 13, 4, frozenset({"ghalibaf"})) is False


def test_the_speaker_is_found_back_over_sentences_about_the_same_person(
    view: FileView,
) -> None:
    # "The woman posts ... Morticia Addams." + "She lives in Canada." + "..., she wrote:"
    assert speaker.said_by(view, 5, 2, frozenset({"morticia", "addam"})) is True
    # A sentence between about something else ends the search.
    assert speaker.said_by(view, 14, 2, frozenset({"zakharova"})) is False


def test_a_sentence_whose_speaker_is_elsewhere_names_no_speaker(view: FileView) -> None:
    # "All American" looks like a name, but "..., he added." refers back: the speaker
    # is the one named in the passage before.
    q = ask("Who dared Trump to come and see?")
    span = speaker.resolve_speaker(view, q, 16, 1)
    assert (span.chunk_id, span.first, span.last, span.support) == (15, 0, 0, 16)


def test_a_speech_act_in_the_passage_before_names_the_speaker(view: FileView) -> None:
    # "President Trump urged ..." is an attribution as "said" is: the "he" of the next
    # passage is Trump.
    q = ask("Who wrote on January 2 that they were locked and loaded?")
    assert speaker.resolve_speaker(view, q, 18, 0) == speaker.Span(17, 0, 0, 18)


def test_a_pronoun_named_nowhere_takes_the_sentence_that_describes_the_speaker(
    view: FileView,
) -> None:
    q = ask("Who was heard saying “I am not afraid”?")
    span = speaker.resolve_speaker(view, q, 19, 1)
    assert span == speaker.Span(19, 0, 1)
    assert span_text(view, span).startswith("Another clip shows an elderly woman")


def test_a_speaker_described_in_the_sentence_itself_is_not_looked_for_elsewhere(
    view: FileView,
) -> None:
    # "The UN secretary-general said" names no one by a capitalised name, but it says
    # who: NetBlocks in the passage before is someone else.
    q = ask("Who said he was shocked and urged restraint?")
    assert speaker.resolve_speaker(view, q, 21, 1) == speaker.Span(21, 1, 1)


def test_she_has_said_is_no_described_speaker(view: FileView) -> None:
    # "has said" is an auxiliary and its verb, not a speaker described by a noun: the
    # sentence before names her.
    q = ask("Which X user says she was arrested in 2019?")
    assert speaker.resolve_speaker(view, q, 22, 1) == speaker.Span(22, 0, 1)


@pytest.mark.parametrize(
    ("question", "someone"),
    [
        ("What has Volodymyr Zelenskyy said about the protests?", True),
        ("What did Ali Larijani say about Trump's warnings?", True),
        # The article or its author, whose words the whole text is.
        ("What does the PSIA analysis say the crisis is embedded in?", False),
        ("How does the commentary on Moscow's allies describe the regime?", False),
        ("What does the PSIA lecturer write about Khamenei?", False),
        # No name: "the minister" is no one to look for.
        ("What did the minister say?", False),
        # A number X reports: the type gate decides, X may be the article's outlet.
        ("How many people does Iran International say were killed?", False),
    ],
)
def test_quotes_someone(question: str, someone: bool) -> None:
    assert speaker.quotes_someone(ask(question)) is someone


def test_a_sentence_closing_a_quotation_takes_the_speaker_of_its_opening(
    view: FileView,
) -> None:
    # "I have been dead for 47 years.”" closes the quotation "..., she says: “I am not
    # afraid.", whose "she" is described in the sentence before.
    q = ask("Who said she had been dead for 47 years?")
    assert speaker.resolve_speaker(view, q, 23, 2) == speaker.Span(23, 0, 2)


def test_describing_something_as_is_giving_ones_words(view: FileView) -> None:
    # "What did Reza Pahlavi call the moment?" is answered by what he "described" it as.
    assert speaker.said_by(view, 24, 0, frozenset({"reza", "pahlavi"})) is True


def test_a_sentence_inside_a_quotation_takes_the_attribution_that_closes_it(
    view: FileView,
) -> None:
    q = ask("Which Russian interviewee said her son was sad?")
    span = speaker.resolve_speaker(view, q, 13, 3)
    assert (span.chunk_id, span.first, span.last) == (13, 0, 5)
    assert span_text(view, span).endswith("Irina told Al Jazeera.")
