"""Request and response bodies of the HTTP API (the contract clients rely on)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rag.pipeline import TOP_K_MAX, TOP_K_MIN


def _json_integer(value: object) -> object:
    """Only numbers that are whole: no strings or booleans (which lax int would coerce)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    return value


JsonInteger = Annotated[int, BeforeValidator(_json_integer)]


class AskRequest(BaseModel):
    # Unknown fields are rejected (422), so a typo such as "topk" is not silently ignored.
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        ...,
        description="A question in plain English.",
        examples=["When did the protests in Iran begin?"],
    )
    # A JSON integer, as JSON Schema defines it: 5 and 5.0 are accepted; "5", true and
    # 5.5 are rejected (422), not coerced.
    top_k: JsonInteger = Field(
        5, ge=TOP_K_MIN, le=TOP_K_MAX, description="How many passages to cite (a JSON integer)."
    )


class SourceRef(BaseModel):
    source: str
    paragraph: int


class AnswerSource(BaseModel):
    source: str
    paragraph: int
    start: int
    end: int


class Citation(BaseModel):
    source: str
    paragraph: int
    start: int = Field(description="Offset of the paragraph in the file's decoded text.")
    end: int
    text: str = Field(description="Equal to file_text[start:end].")
    score: float
    also_in: list[SourceRef]


class AskResponse(BaseModel):
    question: str
    answer: str | None = Field(
        description="Verbatim source text, or null when the articles hold no answer."
    )
    answer_source: AnswerSource | None
    confidence: float
    citations: list[Citation]


class Health(BaseModel):
    status: str
    model: str
    dimension: int
    built_at: str
    build_id: str
    counts: dict[str, int]
    dense_index: str
    # What runs the model: {"documents": "torch ... bfloat16", "questions": "onnxruntime ..."}
    runtimes: dict[str, str]


class SourceInfo(BaseModel):
    source: str
    sha256: str
    chars: int
    paragraphs: int


class SourceList(BaseModel):
    sources: list[SourceInfo]


class Paragraph(BaseModel):
    paragraph: int
    start: int
    end: int
    kind: str = Field(description="body, heading or noise (a stray bullet).")
    text: str


class SourceDetail(BaseModel):
    source: str
    sha256: str
    paragraphs: list[Paragraph]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody
