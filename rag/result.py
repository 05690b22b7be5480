"""The shape of an answer, defined once: `QA.ask` returns it, `POST /ask` serves it (the
HTTP layer uses these classes as its response model) and `rag ask --json` prints it.

Plain dataclasses; the `Field` annotations only document each field in the OpenAPI
schema, they validate nothing here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated

from pydantic import Field


@dataclass(frozen=True)
class SourceRef:
    """A paragraph that says the same as the citation it is listed under."""

    source: str
    paragraph: int


@dataclass(frozen=True)
class Citation:
    """A passage the answer rests on: one paragraph (or a piece of a long one)."""

    source: Annotated[str, Field(description="File name, relative to the corpus folder.")]
    paragraph: Annotated[int, Field(description="Paragraph number in the file, from 1.")]
    start: Annotated[int, Field(description="Offset of the passage in the file's decoded text.")]
    end: int
    text: Annotated[str, Field(description="Equal to file_text[start:end].")]
    score: Annotated[float, Field(description="Fused retrieval score (higher is better).")]
    also_in: Annotated[
        list[SourceRef], Field(description="Near-duplicates folded into this citation.")
    ] = field(default_factory=list)


@dataclass(frozen=True)
class AnswerSource:
    """Where the answer is: `file_text[start:end] == answer`."""

    source: str
    paragraph: int
    start: int
    end: int


@dataclass(frozen=True)
class Result:
    """A verbatim answer (or null) with the passages it comes from; `citations[0]`
    contains the answer."""

    question: str
    answer: Annotated[
        str | None,
        Field(description="Verbatim source text, or null when the articles hold no answer."),
    ]
    answer_source: AnswerSource | None
    confidence: Annotated[float, Field(description="0.5 exactly at the abstention threshold.")]
    citations: list[Citation]

    def to_dict(self) -> dict:
        return asdict(self)
