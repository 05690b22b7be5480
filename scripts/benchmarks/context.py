"""What the sections share: the arguments, a work folder, the reference model, the
server's embedder and an index over --corpus, each made once and only when asked for."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.benchmarks.measure import log
from scripts.harness import ROOT, Server, serve

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from rag.embedder import Embedder

# `rag serve` with api.engine's batch log on, so throughput can count batch sizes.
BENCH_SERVE = (str(ROOT / "scripts" / "bench_serve.py"), "serve")
QUIET = ("--log-level", "warning")


def read_questions(path: Path, limit: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        questions = [json.loads(line)["question"] for line in fh if line.strip()]
    return questions[:limit] if limit else questions


class Context:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self._bare: SentenceTransformer | None = None
        self._embedder: Embedder | None = None
        self._index: Path | None = None

    @property
    def bare(self) -> SentenceTransformer:
        """The reference: SentenceTransformer from the same package, nothing around it."""
        if self._bare is None:
            from sentence_transformers import SentenceTransformer

            from rag.config import EmbedderConfig
            from rag.embedder import resolve_model_path

            path = resolve_model_path(EmbedderConfig().model)
            self._bare = SentenceTransformer(str(path), device="cpu")
        return self._bare

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from rag.config import EmbedderConfig
            from rag.embedder import Embedder

            self._embedder = Embedder(EmbedderConfig())
        return self._embedder

    @property
    def index(self) -> Path:
        """An index over --corpus, built once for the sections that serve it."""
        if self._index is None:
            from rag.index import build_index

            self._index = self.work / "index"
            log(f"building the index over {self.args.corpus}")
            build_index(self.args.corpus, self._index, embedder=self.embedder)
        return self._index

    @contextmanager
    def server(self, log_name: str) -> Iterator[Server]:
        """A real server over `self.index`, started through scripts/bench_serve.py,
        logging to `work/log_name`; stopped on exit."""
        with serve(
            self.index, self.work, timeout=120, log_name=log_name, launcher=BENCH_SERVE, args=QUIET
        ) as server:
            yield server

    def questions(self) -> list[str]:
        return read_questions(self.args.questions, self.args.max_questions)

    def warm_up(self, questions: list[str]) -> None:
        """Twenty bare encodes, so the first measured call is not the first call."""
        for q in questions[:20]:
            self.bare.encode([q])
