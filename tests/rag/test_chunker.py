"""Chunker: exact paragraph numbers, kinds and offsets on the seeds and small fixtures."""

from __future__ import annotations

import pytest

from rag.chunker import (
    chunk_document,
    chunk_documents,
    count_tokens,
    detect_mode,
    split_paragraphs,
    split_sentences,
)
from rag.config import ChunkerConfig
from rag.corpus import Document, read_corpus
from tests.servers import ROOT

CONFIG = ChunkerConfig()


@pytest.fixture(scope="module")
def seeds() -> dict[str, Document]:
    return {d.source: d for d in read_corpus(ROOT / "seeds")}


def _para(doc: Document, number: int):
    return next(p for p in split_paragraphs(doc, CONFIG) if p.number == number)


def test_every_nonblank_seed_line_is_a_numbered_paragraph(seeds: dict[str, Document]) -> None:
    for doc in seeds.values():
        lines = [ln for ln in doc.text.split("\n") if ln.strip()]
        paragraphs = split_paragraphs(doc, CONFIG)
        assert [p.number for p in paragraphs] == list(range(1, len(lines) + 1))
        assert [doc.text[p.start : p.end] for p in paragraphs] == [ln.strip() for ln in lines]


def test_exact_boundaries_of_seed_000(seeds: dict[str, Document]) -> None:
    doc = seeds["000_7144c9d64f512035.txt"]
    # The file opens with an empty line, so paragraph 1 starts at offset 1.
    first, heading, third = (_para(doc, n) for n in (1, 2, 3))
    assert (first.start, first.end, first.kind) == (1, 347, "body")
    assert (heading.start, heading.end, heading.kind) == (348, 382, "heading")
    assert doc.text[348:382] == "Kremlin Sees Protests as Contained"
    assert (third.start, third.end, third.kind) == (383, 660, "body")
    assert doc.text[383:660].startswith("The protests, which erupted on December 28, 2025")
    last = _para(doc, 24)
    assert (doc.text[last.start : last.end], last.kind) == ("Leave a Reply", "heading")


def test_headings_and_bullets_are_never_chunks(seeds: dict[str, Document]) -> None:
    doc = seeds["002_3474f9fe90996d73.txt"]
    kinds = {n: _para(doc, n).kind for n in (14, 15, 16, 17, 18)}
    assert kinds == {14: "heading", 15: "body", 16: "noise", 17: "noise", 18: "body"}
    assert doc.text[_para(doc, 16).start : _para(doc, 16).end] == "•"
    chunks = chunk_document(doc, CONFIG)
    numbers = {c.paragraph for c in chunks}
    assert {14, 16, 17}.isdisjoint(numbers) and {15, 18} <= numbers
    under = next(c for c in chunks if c.paragraph == 15)
    # The heading is context for the paragraphs under it, never part of the cited text.
    assert under.heading == "Material support"
    # The first paragraph of a section takes no sentence from the section before.
    assert under.context == "Material support"
    assert "Material support" not in under.text
    assert (under.start, under.end) == (2321, 2490)


def test_the_sentence_before_is_context_for_a_continued_quote(seeds: dict[str, Document]) -> None:
    doc = seeds["002_3474f9fe90996d73.txt"]
    chunk = next(c for c in chunk_document(doc, CONFIG) if c.paragraph == 55)
    assert chunk.text.startswith("“All American centers and forces")
    assert chunk.context == (
        "Shaping Tehran’s calculus\n“The defenders of Iran will teach you an unforgettable lesson.”"
    )


def test_blank_line_separated_seed_keeps_one_paragraph_per_block(
    seeds: dict[str, Document],
) -> None:
    doc = seeds["004_fa68ee161d232009.txt"]
    paragraphs = split_paragraphs(doc, CONFIG)
    assert len(paragraphs) == 16
    # The first line starts with a space, which is not part of the paragraph.
    assert (paragraphs[0].start, paragraphs[0].end) == (1, 438)
    assert doc.text[1:16] == "date 2026-01-20"
    assert (paragraphs[1].start, paragraphs[1].end) == (440, 738)


def test_chunk_counts_and_offsets_on_the_seeds(seeds: dict[str, Document]) -> None:
    chunks = chunk_documents(seeds.values(), CONFIG)
    counts = {s: sum(c.source == s for c in chunks) for s in seeds}
    assert counts == {
        "000_7144c9d64f512035.txt": 17,
        "001_77e29c8a411f06ba.txt": 38,
        "002_3474f9fe90996d73.txt": 117,
        "003_140432cbe8cf683f.txt": 30,
        "004_fa68ee161d232009.txt": 16,
    }
    for c in chunks:
        text = seeds[c.source].text
        assert c.text == text[c.start : c.end]
        assert c.tokens == count_tokens(c.text, CONFIG.encoding) <= CONFIG.max_tokens
        assert all(c.start <= s < e <= c.end for s, e in c.sentences)


def test_long_paragraph_is_split_at_sentence_boundaries(seeds: dict[str, Document]) -> None:
    doc = seeds["004_fa68ee161d232009.txt"]
    config = ChunkerConfig(max_tokens=60)  # paragraph 1 has 89 tokens and three sentences
    pieces = [c for c in chunk_document(doc, config) if c.paragraph == 1]
    assert [(c.start, c.end) for c in pieces] == [(1, 186), (187, 438)]
    assert pieces[0].text.endswith("you weaken Russia itself'.")
    assert pieces[1].text.startswith("Recent speculation around US action")
    assert [c.tokens for c in pieces] == [43, 46]


def test_a_sentence_over_the_budget_is_cut_at_words() -> None:
    sentence = " ".join(f"Word{i}" for i in range(300)) + "."
    doc = Document("long.txt", f"Short start. {sentence} Short end.", "0")
    config = ChunkerConfig(max_tokens=50)
    chunks = chunk_document(doc, config)
    assert all(c.tokens <= 50 for c in chunks)
    assert chunks[0].text == "Short start."
    assert chunks[-1].text == "Short end."
    # Cuts fall between words: the pieces cover the sentence's words exactly once.
    middle = " ".join(c.text for c in chunks[1:-1])
    assert middle == sentence


def test_hard_wrapped_markdown_is_split_at_blank_lines() -> None:
    doc = read_corpus(ROOT / "tests" / "fixtures" / "markdown")[0]
    assert detect_mode(doc.text) == "blocks"
    got = [(p.number, p.start, p.end, p.kind) for p in split_paragraphs(doc, CONFIG)]
    assert got == [
        (1, 0, 13, "heading"),
        (2, 15, 144, "body"),
        (3, 146, 202, "body"),
        (4, 206, 217, "body"),  # "- a list item", cited without its bullet
        (5, 220, 232, "body"),
        (6, 234, 242, "heading"),
        (7, 244, 304, "body"),
    ]
    chunks = chunk_document(doc, CONFIG)
    first = chunks[0]
    assert first.text == (
        "The first paragraph is hard-wrapped at a narrow width, so its\n"
        "sentences run over several lines. It still counts as one\nparagraph."
    )
    assert first.sentences == ((15, 110), (111, 144))
    assert (first.heading, chunks[-1].heading, chunks[-1].context) == (
        "Field notes",
        "Later",
        "Later",
    )


def test_sentence_splitter_keeps_abbreviations_and_initials() -> None:
    text = "J.K. Rowling met U.S. officials on Monday. Mr. Smith said “no.” Then he left."
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == [
        "J.K. Rowling met U.S. officials on Monday.",
        "Mr. Smith said “no.”",
        "Then he left.",
    ]


@pytest.mark.slow
def test_no_embedded_chunk_exceeds_what_the_model_reads(
    seeds: dict[str, Document], embedder
) -> None:
    # Word-piece-hungry text: long numbers and rare names take many pieces per token.
    heavy = " ".join(
        f"Zbigniew Brzęczyszczykiewicz reported 1,234,567.89 rials on 2026-01-{i % 28 + 1:02d}."
        for i in range(60)
    )
    docs = [*seeds.values(), Document("heavy.txt", f"Heading of it\n{heavy}\n{heavy}\n", "0")]
    for chunk in chunk_documents(docs, CONFIG):
        pieces = embedder.count_word_pieces(chunk.embedded)
        assert pieces <= embedder.max_seq_length == 256, (chunk.source, chunk.paragraph, pieces)
