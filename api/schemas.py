"""Request and response bodies of the HTTP API (the contract clients rely on).

Limits come from `rag.request` and the answer's shape from `rag.result`: the library
defines them once and the schema repeats nothing."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from rag.request import TOP_K_DEFAULT, TOP_K_MAX, TOP_K_MIN
from rag.result import Result


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
        TOP_K_DEFAULT,
        ge=TOP_K_MIN,
        le=TOP_K_MAX,
        description="How many passages to cite (a JSON integer).",
    )
    sources: list[str] | None = Field(
        None,
        min_length=1,
        description="Search only these files (names as GET /sources lists them); the "
        "answer and every citation come from them. An unknown name is rejected (422) "
        "with the name. Omitted or null: every file.",
        examples=[["002_3474f9fe90996d73.txt"]],
    )


# The response of POST /ask is the library's own result type, defined once in rag/result.py.
AskResponse = Result


class Health(BaseModel):
    status: str
    model: str
    dimension: int
    built_at: str
    build_id: str
    counts: dict[str, int]
    backend: str = Field(description="Search backend the chunks live in: local or qdrant.")
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
