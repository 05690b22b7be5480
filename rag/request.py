"""What the pipeline accepts as a question, checked in one place.

`QA.ask` checks every question here, and so does the server before it queues one; the
HTTP schema takes its limits from these constants, so the documented limits and the
checked ones cannot drift apart.
"""

from __future__ import annotations

from rag.errors import InvalidQuestionError

TOP_K_MIN, TOP_K_MAX = 1, 20
TOP_K_DEFAULT = 5
# Longer questions are refused: no real question is this long, and a long one costs a
# full forward pass of up to 256 word pieces.
MAX_QUESTION_CHARS = 2000


def check_question(question: object, top_k: int, max_chars: int = MAX_QUESTION_CHARS) -> str:
    """The question without surrounding whitespace, or InvalidQuestionError saying what
    to change."""
    if not isinstance(question, str):
        raise InvalidQuestionError(f"question must be a string, got {type(question).__name__}")
    if not question.strip():
        raise InvalidQuestionError("question is empty or only whitespace; ask something")
    if len(question) > max_chars:
        raise InvalidQuestionError(
            f"question is {len(question)} characters; the limit is {max_chars}"
        )
    try:
        question.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate escape such as "\ud800"
        raise InvalidQuestionError(
            f"question is not valid Unicode: unpaired surrogate at character {exc.start}"
        ) from None
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise InvalidQuestionError(f"top_k must be an integer, got {top_k!r}")
    if not TOP_K_MIN <= top_k <= TOP_K_MAX:
        raise InvalidQuestionError(
            f"top_k must be between {TOP_K_MIN} and {TOP_K_MAX}, got {top_k}"
        )
    return question.strip()
