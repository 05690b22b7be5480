"""A one-file corpus of hand-written paragraphs, one chunk each: the slice of IndexView
that speaker and reference resolution read, without an index."""

from __future__ import annotations

from dataclasses import dataclass

from rag.answering.speaker import Span
from rag.chunker import Chunk
from rag.text import split_sentences

SOURCE = "a.txt"


@dataclass
class FileView:
    text_: str
    chunks: list[Chunk]

    @classmethod
    def of(cls, paragraphs: list[str]) -> FileView:
        text = "\n".join(paragraphs)
        chunks, start = [], 0
        for number, paragraph in enumerate(paragraphs, 1):
            end = start + len(paragraph)
            sentences = tuple(split_sentences(text, start, end))
            chunks.append(Chunk(SOURCE, number, start, end, paragraph, 0, sentences=sentences))
            start = end + 1
        return cls(text, chunks)

    def chunk(self, cid: int) -> Chunk:
        return self.chunks[cid]

    def text(self, source: str) -> str:
        assert source == SOURCE
        return self.text_

    def previous_chunk(self, cid: int) -> int | None:
        return cid - 1 if cid > 0 else None

    def span_text(self, span: Span) -> str:
        chunk = self.chunk(span.chunk_id)
        return self.text_[chunk.sentences[span.first][0] : chunk.sentences[span.last][1]]
