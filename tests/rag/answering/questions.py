"""A Question built from its text alone, without the model: what the string-level parts of
the answerer (gates, speaker, abstention features) read."""

from __future__ import annotations

import numpy as np

from rag.question import Question, expected_answer, key_names, name_phrases
from rag.text import tokenize


def ask(text: str) -> Question:
    empty = np.zeros((0, 4), dtype=np.float32)
    return Question(
        text,
        np.zeros(4),
        empty,
        np.zeros(0, np.int64),
        tokenize(text),
        expected_answer(text),
        key_names(text),
        phrases=tuple(name_phrases(text)),
    )
