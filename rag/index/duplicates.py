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

import shutil
from array import array
from pathlib import Path

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


def lexical_overlap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(Jaccard, containment of the smaller) of two sorted arrays of distinct term ids:
    ratios of integers, so a threshold holds exactly."""
    if not len(a) or not len(b):
        return 0.0, 0.0
    common = len(np.intersect1d(a, b, assume_unique=True))
    return common / (len(a) + len(b) - common), common / min(len(a), len(b))


def term_ids(text: str, vocabulary: dict[str, int]) -> np.ndarray:
    """Sorted distinct ids of a text's content words, numbering new words in
    `vocabulary` as they come (the arrays `lexical_overlap` compares)."""
    return np.array(
        sorted({vocabulary.setdefault(t, len(vocabulary)) for t in tokenize(text)}), np.int32
    )


class DuplicateFinder:
    """Near-duplicate groups of the chunks a build streams through it (`add`, in corpus
    order), found once every chunk is in (`groups`).

    It keeps, per chunk, only what the test needs: the number of its source, the sorted
    ids of its content words (int32, in one flat array) and the vector of its own text,
    appended to a raw file in `folder`, not held. That is about 0.3 kB a chunk in memory
    instead of the chunk itself (3.7 kB on SciFact), so a build's memory stops growing
    with whole chunks; the vectors come back only for the k-NN search in `groups`."""

    def __init__(self, folder: Path, dimension: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.dimension = folder, dimension
        self._vectors_path = folder / "text_vectors.f32"
        self._vectors = self._vectors_path.open("wb")
        self._source_numbers: dict[str, int] = {}
        self.sources = array("i")  # per chunk: the number of its source
        self._vocabulary: dict[str, int] = {}
        self._terms = array("i")  # every chunk's sorted term ids, one after the other
        self._ends = array("q")  # per chunk: where its term ids end in `_terms`

    def __len__(self) -> int:
        return len(self.sources)

    def add(self, chunk: Chunk, vector: np.ndarray) -> None:
        """One chunk, with the vector of its own text (`text_vector`)."""
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if len(vector) != self.dimension:
            raise ValueError(f"vector of {len(vector)} dimensions, expected {self.dimension}")
        self._vectors.write(vector.tobytes())
        numbers = self._source_numbers
        self.sources.append(numbers.setdefault(chunk.source, len(numbers)))
        self._terms.extend(term_ids(chunk.text, self._vocabulary))
        self._ends.append(len(self._terms))

    def groups(self, config: IndexConfig) -> list[list[int]]:
        """For each chunk, the positions (in the order added) of its near-duplicates,
        ascending. Candidate pairs come from a k-NN search over the vectors, so the cost
        grows with the number of chunks, not with its square."""
        n = len(self)
        if not n:
            return []
        self._vectors.flush()
        vectors = np.fromfile(self._vectors_path, np.float32).reshape(n, self.dimension)
        scores, ids = DenseIndex.build(vectors).search(vectors, NEIGHBOURS)
        del vectors
        terms, ends = np.frombuffer(self._terms, dtype=np.int32), self._ends

        def term_ids(i: int) -> np.ndarray:
            return terms[(ends[i - 1] if i else 0) : ends[i]]

        dups: list[set[int]] = [set() for _ in range(n)]
        for i, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True)):
            a = term_ids(i)
            for score, j in zip(row_scores, row_ids, strict=True):
                j = int(j)
                if j < 0 or j == i:
                    continue
                jaccard, containment = lexical_overlap(a, term_ids(j))
                same = (
                    jaccard >= config.duplicate_jaccard
                    or containment >= config.duplicate_containment
                    or (
                        self.sources[i] != self.sources[j]
                        and score >= config.duplicate_cosine_cross_source
                    )
                )
                if same:
                    dups[i].add(j)
                    dups[j].add(i)
        return [sorted(d) for d in dups]

    def close(self) -> None:
        """Remove its folder (the vectors' file)."""
        self._vectors.close()
        shutil.rmtree(self.folder, ignore_errors=True)
