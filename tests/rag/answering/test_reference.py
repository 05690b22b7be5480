"""Reference resolution (rag/answering/reference.py): "This X ..." answering "Which X
...?" takes the sentence that names X. Exact spans on a hand-written file."""

from __future__ import annotations

import pytest

from rag.answering import reference
from tests.rag.answering.files import FileView
from tests.rag.answering.questions import ask

PARAGRAPHS = [
    "Russia leads several clubs, such as the Collective Security Treaty Organization (CSTO).",
    "This post-Soviet security alliance, founded in 2002, functions only on paper.",
    "Moscow backs many partners. Its oldest ally is Armenia. This ally froze its membership.",
    "Moscow backs many partners. These partners get little help.",
    "This alliance meets rarely.",
    "A response is excluded. This is suggested by past cases. Other claims follow here.",
    "A sentence that keeps on going with many more words than a short claim has. This "
    "goes on about it.",
    "Russia intervened in Syria, Libya and Africa after the war, in a long campaign lasting "
    "many years. These ventures produced mixed results.",
]
ALLIANCE = "Which post-Soviet security alliance does the author say exists only on paper?"


@pytest.fixture(scope="module")
def view() -> FileView:
    return FileView.of(PARAGRAPHS)


def test_asked_thing_is_the_head_before_the_auxiliary() -> None:
    assert reference.asked_thing(ask(ALLIANCE)) == "allianc"
    assert reference.asked_thing(ask("What country has Russia helped?")) == "countri"
    # Not a "which X <auxiliary>" question.
    assert reference.asked_thing(ask("Which country froze its membership?")) is None
    assert reference.asked_thing(ask("Who leads the alliance?")) is None


def test_this_x_first_in_its_passage_takes_the_last_sentence_before(view: FileView) -> None:
    span = reference.resolve_reference(view, ask(ALLIANCE), 1, 0)
    assert span is not None
    assert (span.chunk_id, span.first, span.last, span.support) == (0, 0, 0, 1)
    assert "(CSTO)" in view.span_text(span)


def test_this_x_inside_a_passage_takes_both_sentences(view: FileView) -> None:
    span = reference.resolve_reference(view, ask("Which ally has Russia lost?"), 2, 2)
    assert span is not None
    assert (span.chunk_id, span.first, span.last, span.support) == (2, 1, 2, None)
    assert view.span_text(span) == "Its oldest ally is Armenia. This ally froze its membership."


@pytest.mark.parametrize(
    ("question", "cid", "sentence"),
    [
        # The sentence before names nothing new.
        ("Which partners did Moscow back?", 3, 1),
        # "This" names another thing than the one asked about.
        ("Which treaty did Russia sign?", 1, 0),
        # The last sentence of the passage before names nothing new.
        ("Which alliance does Russia lead?", 4, 0),
        # A question that does not ask "which X".
        ("Why does the alliance exist only on paper?", 1, 0),
    ],
)
def test_no_reference_is_resolved(view: FileView, question: str, cid: int, sentence: int) -> None:
    assert reference.resolve_reference(view, ask(question), cid, sentence) is None


def test_a_short_claim_takes_the_next_sentence_that_goes_on_about_it(view: FileView) -> None:
    why = ask("Why is a response excluded?")
    span = reference.continued(view, why, 5, 0)
    assert span is not None
    assert view.span_text(span) == "A response is excluded. This is suggested by past cases."
    # The next sentence does not go on about it ("Other claims ..."), or there is none.
    assert reference.continued(view, why, 5, 1) is None
    assert reference.continued(view, why, 5, 2) is None
    # A long sentence stands alone.
    assert reference.continued(view, why, 6, 0) is None
    # A question for a date, a number or a name is answered by the sentence holding it.
    assert reference.continued(view, ask("When was a response excluded?"), 5, 0) is None


def test_a_sentence_takes_the_next_one_that_goes_on_about_the_thing_asked(
    view: FileView,
) -> None:
    # "These ventures ..." is about the ventures the question asks about: it is taken
    # after a long sentence too.
    outcome = ask("What was the outcome of Russia's ventures in Syria?")
    span = reference.continued(view, outcome, 7, 0)
    assert span is not None
    assert view.span_text(span).endswith("These ventures produced mixed results.")
    # A question that does not name the ventures: the long sentence stands alone.
    assert reference.continued(view, ask("What did Russia do in Syria and Libya?"), 7, 0) is None
