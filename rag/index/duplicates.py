"""Near-duplicate detection, done once at build time so queries only look it up.

Two chunks are duplicates when
- their content words overlap almost entirely (Jaccard >= `duplicate_jaccard`), as
  with the paragraphs seed 002 repeats nearly word for word; or
- one's content words lie (almost) all inside the other's (>= `duplicate_containment`),
  as with the pull quotes of seed 003; or
- they come from different files and their own texts mean the same (cosine >=
  `duplicate_cosine_cross_source`), as when seeds 000 and 001 tell one story in other
  words. Within one file the cosine is no evidence: neighbouring paragraphs share
  their context and look alike.
"""

from __future__ import annotations

import numpy as np

from rag.chunker import Chunk
from rag.config import IndexConfig
from rag.index.backend import ChunkRecord
from rag.index.dense import DenseIndex
from rag.text import tokenize

NEIGHBOURS = 10


def text_vector(record: ChunkRecord) -> np.ndarray:
    """A vector of the chunk's own text from its tokens, mean-pooled as MiniLM pools and
    renormalised, leaving out the tokens of its context. Computed as each record is
    embedded, so the build keeps one vector per chunk, not its tokens."""
    if record.tokens is None or record.token_spans is None:
        raise ValueError(f"record {record.id} has no tokens")
    own = record.tokens[record.token_spans[:, 0] >= record.chunk.text_offset]
    mean = np.asarray(own if len(own) else record.tokens, dtype=np.float32).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def lexical_overlap(a: set[str], b: set[str]) -> tuple[float, float]:
    """(Jaccard, containment of the smaller set) of two sets of terms."""
    if not a or not b:
        return 0.0, 0.0
    common = len(a & b)
    return common / len(a | b), common / min(len(a), len(b))


def find_duplicates(
    chunks: list[Chunk], vectors: np.ndarray, config: IndexConfig
) -> list[list[int]]:
    """For each chunk, the positions (in `chunks`) of its near-duplicates, ascending.
    `vectors` holds each chunk's `text_vector`. Candidate pairs come from a k-NN search,
    so the cost grows with the number of chunks, not with its square."""
    if not chunks:
        return []
    scores, ids = DenseIndex.build(vectors).search(vectors, NEIGHBOURS)
    terms = [set(tokenize(c.text)) for c in chunks]
    dups: list[set[int]] = [set() for _ in chunks]
    for i, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True)):
        for score, j in zip(row_scores, row_ids, strict=True):
            j = int(j)
            if j < 0 or j == i:
                continue
            jaccard, containment = lexical_overlap(terms[i], terms[j])
            same = (
                jaccard >= config.duplicate_jaccard
                or containment >= config.duplicate_containment
                or (
                    chunks[i].source != chunks[j].source
                    and score >= config.duplicate_cosine_cross_source
                )
            )
            if same:
                dups[i].add(j)
                dups[j].add(i)
    return [sorted(d) for d in dups]
