"""Late interaction: every chunk keeps its contextual token embeddings.

A question is scored against a passage by MaxSim (ColBERT, BERTScore-recall style): each
content word piece of the question takes its best cosine with any token of the
passage, and those maxima are averaged with IDF weights. Unlike one pooled vector, this
keeps which words matched, so "break out" still finds "erupted" while a long paragraph
about several things is not diluted. The token embeddings come from the same forward
pass that gives the pooled vector, so indexing costs no extra model call.

On the seeds question set the hybrid ranking with MaxSim puts the gold paragraph first
for 0.883 of the answerable questions, 0.740 without it (README, Evaluation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.embedder import TokenBlock

if TYPE_CHECKING:
    import torch

# torch (for its products) is imported by the store that is searched, not at module
# level: a build's driver writes token files through this module without ever scoring.

FILES = ("tokens.npy", "token_ids.npy", "token_spans.npy", "token_offsets.npy")
# Up to this many tokens (about 150 MB as float32; the seeds have 16k) the store is
# held in memory as float32 and scored with one product over all of it.
IN_MEMORY_MAX_TOKENS = 100_000


class TokenStore:
    """Token embeddings of every chunk, concatenated; chunk i owns rows
    offsets[i]:offsets[i + 1]."""

    def __init__(
        self, embeddings: np.ndarray, ids: np.ndarray, spans: np.ndarray, offsets: np.ndarray
    ) -> None:
        self.embeddings = embeddings
        self.ids = ids
        self.spans = spans
        self.offsets = offsets
        self._df: np.ndarray | None = None
        # A small store is also held as a torch matrix (sharing memory): torch's product
        # is about 4x faster than numpy's single-threaded BLAS on these shapes.
        self.matrix: torch.Tensor | None = None
        if embeddings.dtype == np.float32 and embeddings.flags.c_contiguous:
            import torch

            self.matrix = torch.from_numpy(embeddings)

    @classmethod
    def from_blocks(cls, blocks: list[TokenBlock], dimension: int) -> TokenStore:
        offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(b.ids) for b in blocks])
        if blocks:
            emb = np.concatenate([b.embeddings for b in blocks]).astype(np.float16)
            ids = np.concatenate([b.ids for b in blocks]).astype(np.int32)
            spans = np.concatenate([b.spans for b in blocks]).astype(np.int32)
        else:
            emb = np.zeros((0, dimension), np.float16)
            ids = np.zeros(0, np.int32)
            spans = np.zeros((0, 2), np.int32)
        return cls(emb, ids, spans.reshape(-1, 2), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def block(self, chunk_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings, spans) of one chunk."""
        a, b = self.offsets[chunk_id], self.offsets[chunk_id + 1]
        return self.embeddings[a:b], self.spans[a:b]

    @property
    def document_frequency(self) -> np.ndarray:
        """How many chunks contain each word-piece id (computed once, on first use)."""
        if self._df is None:
            chunk_of = np.repeat(np.arange(len(self)), np.diff(self.offsets))
            vocab = int(self.ids.max()) + 1 if len(self.ids) else 1
            pairs = np.unique(chunk_of.astype(np.int64) * vocab + self.ids)
            self._df = np.bincount(pairs % vocab, minlength=vocab)
        return self._df

    def idf(self, ids: np.ndarray) -> np.ndarray:
        df = self.document_frequency
        known = np.where(ids < len(df), df[np.minimum(ids, len(df) - 1)], 0)
        return np.log((len(self) + 1) / (known + 1)) + 1.0

    def save(self, folder: Path) -> None:
        np.save(folder / "tokens.npy", self.embeddings)
        np.save(folder / "token_ids.npy", self.ids)
        np.save(folder / "token_spans.npy", self.spans)
        np.save(folder / "token_offsets.npy", self.offsets)

    @classmethod
    def load(cls, folder: Path) -> TokenStore:
        # float16 on disk. A small store is held as float32, since numpy has no fast
        # float16 product; a large one stays memory-mapped and only the candidates' rows
        # are read and converted, query by query.
        embeddings = np.load(folder / "tokens.npy", mmap_mode="r")
        if len(embeddings) <= IN_MEMORY_MAX_TOKENS:
            embeddings = np.asarray(embeddings, dtype=np.float32)
        return cls(
            embeddings,
            np.load(folder / "token_ids.npy"),
            np.load(folder / "token_spans.npy"),
            np.load(folder / "token_offsets.npy"),
        )


def maxsim(query: np.ndarray, weights: np.ndarray, doc: np.ndarray) -> float:
    """IDF-weighted mean over query tokens of their best cosine with a document token."""
    if len(query) == 0 or len(doc) == 0 or weights.sum() <= 0:
        return 0.0
    best = (query @ np.asarray(doc, dtype=np.float32).T).max(axis=1)
    return float(best @ weights / weights.sum())


def similarities(queries: list[np.ndarray], store: TokenStore) -> list[np.ndarray | None]:
    """Each query's cosines with every token of an in-memory store, from one product for
    all of them: a batch of questions reads the store once instead of once each (0.44 ms
    a question at 8 questions against 1.0 ms alone, here). None for a large store, whose
    candidates' rows are read per question instead."""
    if store.matrix is None or not queries:
        return [None] * len(queries)
    import torch

    stacked = torch.from_numpy(np.concatenate(queries)) if len(queries) > 1 else None
    with torch.inference_mode():
        if stacked is None:
            return [(torch.from_numpy(queries[0]) @ store.matrix.T).numpy()]
        sims = (stacked @ store.matrix.T).numpy()
    bounds = np.cumsum([len(q) for q in queries])[:-1]
    return list(np.split(sims, bounds))


def maxsim_many(
    query: np.ndarray,
    weights: np.ndarray,
    store: TokenStore,
    chunk_ids: list[int],
    own_from: np.ndarray,
    sims_all: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """MaxSim of one query against many chunks in one matrix product: (against each
    chunk's tokens from offset `own_from[i]` of its embedded text on, against all of
    them). `sims_all`, if given, is the query's product with the whole store."""
    if not chunk_ids or len(query) == 0 or weights.sum() <= 0:
        zeros = np.zeros(len(chunk_ids), dtype=np.float32)
        return zeros, zeros.copy()
    starts = store.offsets[chunk_ids]
    lengths = store.offsets[np.asarray(chunk_ids) + 1] - starts
    bounds = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # Every candidate's token rows, in candidate order: start + 0, 1, ... length - 1.
    rows = np.repeat(starts - bounds, lengths) + np.arange(int(lengths.sum()))
    if sims_all is not None:
        sims = sims_all[:, rows]
    elif store.matrix is not None and len(rows) * 4 > len(store.ids):
        # Most of a small store is wanted: one product over all of it beats copying.
        import torch

        with torch.inference_mode():
            sims = (torch.from_numpy(query) @ store.matrix.T).numpy()[:, rows]
    else:  # (query terms, candidate tokens)
        sims = query @ np.asarray(store.embeddings[rows], dtype=np.float32).T
    own = store.spans[rows, 0] >= np.repeat(own_from, lengths)
    best_all = np.maximum.reduceat(sims, bounds, axis=1)
    best_own = np.maximum.reduceat(np.where(own, sims, -1.0), bounds, axis=1)
    total = weights.sum()
    return weights @ best_own / total, weights @ best_all / total
