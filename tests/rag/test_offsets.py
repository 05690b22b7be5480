"""Offsets in files with Windows line ends (CRLF) and a UTF-8 byte order mark: offsets are
character offsets into the file decoded as UTF-8 (README), so the BOM is character 0 and
every cited span is the file's text at those offsets, with no stray "\\r"."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.chunker import chunk_documents, detect_mode, split_paragraphs
from rag.config import ChunkerConfig, PipelineConfig
from rag.corpus import read_corpus

BOM = b"\xef\xbb\xbf"
LINES_FILE = (
    BOM
    + (
        "Iran protests\r\n"
        "The protests began in late December 2025. They spread fast.\r\n"
        "\u2022\r\n"
        "Nikita Smagin said: \u201cIt is over.\u201d\r\n"
    ).encode()
)
BLOCKS_FILE = (
    b"Short heading\r\n"
    b"\r\n"
    b"This is a hard wrapped paragraph that goes on\r\n"
    b"for two lines and ends here.\r\n"
    b"\r\n"
    b"Another wrapped paragraph with words\r\n"
    b"that ends too.\r\n"
)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_bytes(LINES_FILE)
    (folder / "b.txt").write_bytes(BLOCKS_FILE)
    return folder


def test_bom_is_kept_as_character_zero(corpus: Path) -> None:
    a, b = read_corpus(corpus)
    assert a.text == LINES_FILE.decode("utf-8") and a.text[0] == "\ufeff"
    assert b.text == BLOCKS_FILE.decode("utf-8")
    assert (detect_mode(a.text), detect_mode(b.text)) == ("lines", "blocks")


def test_paragraph_offsets_with_bom_and_crlf(corpus: Path) -> None:
    a, b = read_corpus(corpus)
    found = [
        (p.number, p.start, p.end, p.kind, d.text[p.start : p.end])
        for d in (a, b)
        for p in split_paragraphs(d, ChunkerConfig())
    ]
    assert found == [
        (1, 1, 14, "heading", "Iran protests"),
        (2, 16, 75, "body", "The protests began in late December 2025. They spread fast."),
        (3, 77, 78, "noise", "\u2022"),
        (4, 80, 113, "body", "Nikita Smagin said: \u201cIt is over.\u201d"),
        (1, 0, 13, "heading", "Short heading"),
        (
            2,
            17,
            92,
            "body",
            "This is a hard wrapped paragraph that goes on\r\nfor two lines and ends here.",
        ),
        (3, 96, 148, "body", "Another wrapped paragraph with words\r\nthat ends too."),
    ]


def test_chunk_and_sentence_offsets_with_bom_and_crlf(corpus: Path) -> None:
    docs = {d.source: d for d in read_corpus(corpus)}
    chunks = chunk_documents(docs.values(), ChunkerConfig())
    assert [(c.source, c.paragraph, c.start, c.end, c.sentences) for c in chunks] == [
        ("a.txt", 2, 16, 75, ((16, 57), (58, 75))),
        ("a.txt", 4, 80, 113, ((80, 113),)),
        ("b.txt", 2, 17, 92, ((17, 92),)),
        ("b.txt", 3, 96, 148, ((96, 148),)),
    ]
    for c in chunks:
        text = docs[c.source].text
        assert text[c.start : c.end] == c.text
        for s, e in c.sentences:
            sentence = text[s:e]
            assert sentence == sentence.strip(" \r\n\ufeff") and "\ufeff" not in sentence
    # The context is the heading without the BOM or the line end.
    assert chunks[0].context == "Iran protests"
    assert chunks[1].context == "Iran protests\nThey spread fast."


@pytest.mark.slow
def test_answers_from_crlf_and_bom_files_are_verbatim(
    corpus: Path, tmp_path: Path, embedder
) -> None:
    """Through the whole pipeline: the answer and every citation are the file's own text
    at their offsets, the file read from disk and decoded as UTF-8."""
    from rag.index import build_index
    from rag.pipeline import QA

    build_index(corpus, tmp_path / "index", PipelineConfig(), embedder=embedder)
    qa = QA.load(tmp_path / "index", embedder=embedder)
    result = qa.ask("When did the protests begin?", top_k=5)
    files = {p.name: p.read_bytes().decode("utf-8") for p in corpus.iterdir()}
    src = result.answer_source
    # The sentence that answers, with the short one after it (AnswererConfig.use_follow).
    assert result.answer == "The protests began in late December 2025. They spread fast."
    assert (src.source, src.paragraph, src.start, src.end) == ("a.txt", 2, 16, 75)
    assert files[src.source][src.start : src.end] == result.answer
    assert result.citations
    for c in result.citations:
        assert files[c.source][c.start : c.end] == c.text
        assert "\r" not in c.text.replace("\r\n", "")  # only the file's own line ends
