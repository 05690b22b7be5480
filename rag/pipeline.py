"""Pipeline: question in, verbatim answer and exact citations out.

Entry point: `QA.load(index_dir).ask(question, top_k)`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path
from typing import Any

from rag.answerer import Answer, extract_answer
from rag.config import PipelineConfig, RetrieverConfig
from rag.embedder import Embedder, EncodedQuestion
from rag.index import Index, load_index
from rag.question import analyse
from rag.request import TOP_K_DEFAULT, check_question
from rag.result import AnswerSource, Citation, Result, SourceRef
from rag.retriever import Hit, retrieve


class QA:
    """An index and the embedder it was built with, ready to answer."""

    def __init__(self, index: Index, embedder: Embedder) -> None:
        if embedder.name != index.manifest.model.name:
            raise ValueError(
                f"index built with {index.manifest.model.name}, embedder is {embedder.name}"
            )
        self.index = index
        self.embedder = embedder
        self.config = index.config

    @classmethod
    def load(
        cls, path: Path, config: PipelineConfig | None = None, embedder: Embedder | None = None
    ) -> QA:
        index = load_index(Path(path), config)
        return cls(index, embedder or Embedder(index.config.embedder))

    def ask(
        self, question: str, top_k: int = TOP_K_DEFAULT, sources: Collection[str] | None = None
    ) -> Result:
        """Answer `question`; `sources` (file names from the index) restricts the search
        to those files, and an unknown name raises UnknownSourceError."""
        return self.ask_batch([question], top_k, sources)[0]

    def ask_batch(
        self,
        questions: list[str],
        top_k: int = TOP_K_DEFAULT,
        sources: Collection[str] | None = None,
    ) -> list[Result]:
        """Answer several questions with one forward pass of the model."""
        cleaned = [check_question(q, top_k) for q in questions]
        allowed = self.index.check_sources(sources)
        encoded = self.encode(cleaned)
        sims = self.similarities(encoded)
        return [
            self.answer(q, e, top_k, s, allowed)
            for q, e, s in zip(cleaned, encoded, sims, strict=True)
        ]

    def encode(self, questions: list[str]) -> list[EncodedQuestion]:
        """The model's part of answering: one forward pass for all `questions`."""
        return self.embedder.encode_questions(questions)

    def similarities(self, encoded: list[EncodedQuestion]) -> list[Any]:
        """What the backend prepares once for a batch of questions (the local backend:
        their token cosines with its whole in-memory token store, one product); handed
        to `answer` as `token_sims`, which works without it too."""
        return self.index.backend.prepare([e.tokens for e in encoded])

    def answer(
        self,
        question: str,
        encoded: EncodedQuestion,
        top_k: int = TOP_K_DEFAULT,
        token_sims: Any = None,
        sources: Collection[str] | None = None,
    ) -> Result:
        """Retrieve, fold, extract: everything after the question's forward pass.
        `sources`: only these files are searched (checked by `Index.check_sources`)."""
        index = self.index
        analysed = analyse(question, encoded, token_sims)
        allowed = index.check_sources(sources)
        hits, by_id = retrieve(index, analysed, top_k, self.config.retriever, allowed)
        answer = extract_answer(index, analysed, hits, by_id, self.config.answerer)
        hits = _answer_first(hits, answer, by_id)
        answer_source = None
        if answer.chunk_id is not None:
            chunk = index.chunk(answer.chunk_id)
            answer_source = AnswerSource(chunk.source, chunk.paragraph, answer.start, answer.end)
        return Result(
            question=question,
            answer=answer.text,
            answer_source=answer_source,
            confidence=answer.confidence,
            citations=[self._citation(h) for h in hits],
        )

    def retrieve(
        self,
        question: str,
        k: int,
        config: RetrieverConfig | None = None,
        encoded: EncodedQuestion | None = None,
        sources: Collection[str] | None = None,
    ) -> tuple[list[Hit], dict[int, Hit]]:
        """The retrieval step alone, for evaluation and benchmarks: the top `k` hits
        (near-duplicates folded) and every scored candidate by chunk id. `k` is not capped
        as `ask`'s `top_k` is (BEIR figures need 100), and `config` replaces the index's
        retriever settings when given. `encoded`: the question's forward pass, if done."""
        encoded = encoded if encoded is not None else self.encode([question])[0]
        allowed = self.index.check_sources(sources)
        analysed = analyse(question, encoded)
        return retrieve(self.index, analysed, k, config or self.config.retriever, allowed)

    def _citation(self, hit: Hit) -> Citation:
        chunk = self.index.chunk(hit.chunk_id)
        also = [r.chunk for r in self.index.records(hit.also_in)]
        return Citation(
            source=chunk.source,
            paragraph=chunk.paragraph,
            start=chunk.start,
            end=chunk.end,
            text=chunk.text,
            score=round(hit.score, 4),
            also_in=[SourceRef(c.source, c.paragraph) for c in also],
        )


def _answer_first(hits: list[Hit], answer: Answer, by_id: dict[int, Hit]) -> list[Hit]:
    """Put the answer's passage first, and the passage it supports (the quote whose
    speaker it names) right after it; as many citations as before."""
    if answer.chunk_id is None:
        return hits
    ordered = _lead(hits, answer.chunk_id, by_id)
    if answer.support_chunk_id is not None:
        ordered = [ordered[0], *_lead(ordered[1:], answer.support_chunk_id, by_id)]
    return ordered[: len(hits)]


def _lead(hits: list[Hit], cid: int, by_id: dict[int, Hit]) -> list[Hit]:
    """`hits` with chunk `cid` first. If it was folded under a duplicate, it becomes the
    group's visible member and the other moves to `also_in`. A chunk the ranking did not
    keep (the passage before a quote, naming its speaker) is added with its own score."""
    for i, hit in enumerate(hits):
        if cid == hit.chunk_id:
            return [hit, *hits[:i], *hits[i + 1 :]]
        if cid in hit.also_in:
            base = by_id.get(cid) or hit
            lead = replace(
                base, chunk_id=cid, also_in=[hit.chunk_id, *(j for j in hit.also_in if j != cid)]
            )
            return [lead, *hits[:i], *hits[i + 1 :]]
    base = by_id.get(cid) or Hit(cid, 0.0)
    return [replace(base, also_in=[]), *hits]
