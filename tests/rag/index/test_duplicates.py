"""Near-duplicate folding (rag/index/duplicates.py) at its thresholds, on hand-made chunks
and token vectors: a pair folds exactly at each threshold and not one step below it.

Terms are made-up words ("wa0", "wa1", ...), which the BM25 tokenizer keeps as they are,
so each overlap is a ratio of small integers computed exactly."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rag.chunker import Chunk
from rag.config import IndexConfig
from rag.embedder import TokenBlock
from rag.index.backend import ChunkRecord
from rag.index.duplicates import DuplicateFinder, lexical_overlap, term_ids, text_vector
from rag.text import tokenize

CONFIG = IndexConfig()


def words(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def chunk(source: str, paragraph: int, terms: list[str]) -> Chunk:
    text = " ".join(terms) + "."
    return Chunk(source, paragraph, 0, len(text), text, len(terms))


def block(*rows: list[float]) -> TokenBlock:
    """A chunk's token embeddings (its own text only: no context)."""
    emb = np.asarray(rows, dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return TokenBlock(
        vector=emb.mean(axis=0),
        embeddings=emb,
        ids=np.arange(len(emb), dtype=np.int32),
        spans=np.zeros((len(emb), 2), dtype=np.int32),
    )


def text_vectors(chunks: list[Chunk], blocks: list[TokenBlock]) -> np.ndarray:
    """Each chunk's own-text vector, as the build computes it."""
    records = [ChunkRecord.from_block(c, b, key="") for c, b in zip(chunks, blocks, strict=True)]
    return np.stack([text_vector(r) for r in records])


def fold(chunks: list[Chunk], blocks: list[TokenBlock], config: IndexConfig) -> list[list[int]]:
    """What the build does: each chunk with its own-text vector, then the folding."""
    vectors = text_vectors(chunks, blocks)
    with tempfile.TemporaryDirectory() as folder:
        finder = DuplicateFinder(Path(folder) / "dups", vectors.shape[1])
        try:
            for c, v in zip(chunks, vectors, strict=True):
                finder.add(c, v)
            return finder.groups(config)
        finally:
            finder.close()


def orthogonal(n: int, dim: int = 8) -> list[TokenBlock]:
    """n blocks whose vectors are pairwise orthogonal: cosine 0, no semantic evidence."""
    return [block([1.0 if j == i else 0.0 for j in range(dim)]) for i in range(n)]


def test_documented_thresholds() -> None:
    """The values the README and IndexConfig's comment give."""
    assert (CONFIG.duplicate_jaccard, CONFIG.duplicate_containment) == (0.6, 0.95)
    assert CONFIG.duplicate_cosine_cross_source == 0.8


def test_made_up_words_are_their_own_terms() -> None:
    assert tokenize("wa0 wa1 wb12.") == ["wa0", "wa1", "wb12"]


def test_lexical_overlap_by_hand() -> None:
    a, b = np.array([0, 1, 2, 3], np.int32), np.array([0, 1, 2, 4], np.int32)
    assert lexical_overlap(a, b) == (3 / 5, 3 / 4)
    assert lexical_overlap(np.zeros(0, np.int32), b) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("shared", "only_a", "only_b", "folds"),
    [
        (3, 1, 1, True),  # Jaccard 3/5 = 0.6 exactly (containment 3/4)
        (4, 2, 1, False),  # Jaccard 4/7 = 0.571 (containment 4/5)
        (6, 2, 2, True),  # Jaccard 6/10 = 0.6 exactly
        (5, 2, 2, False),  # Jaccard 5/9 = 0.556
    ],
)
def test_jaccard_folds_at_the_threshold_and_not_below(
    shared: int, only_a: int, only_b: int, folds: bool
) -> None:
    common = words("wc", shared)
    chunks = [
        chunk("a.txt", 1, common + words("wa", only_a)),
        chunk("a.txt", 2, common + words("wb", only_b)),
        chunk("a.txt", 3, words("wz", 6)),  # unrelated, never folded
    ]
    expected = [[1], [0], []] if folds else [[], [], []]
    assert fold(chunks, orthogonal(3), CONFIG) == expected


@pytest.mark.parametrize(
    ("shared", "small_only", "folds"),
    [
        (19, 1, True),  # 19 of the smaller chunk's 20 terms = 0.95 exactly
        (18, 1, False),  # 18 of 19 = 0.947
        (20, 0, True),  # a pull quote: all of it
    ],
)
def test_containment_folds_at_the_threshold_and_not_below(
    shared: int, small_only: int, folds: bool
) -> None:
    common = words("wc", shared)
    quote = common + words("wq", small_only)
    article = common + words("wl", 40)  # Jaccard stays far below 0.6
    chunks = [chunk("a.txt", 1, article), chunk("a.txt", 2, quote)]
    vocabulary: dict[str, int] = {}
    pair = [term_ids(c.text, vocabulary) for c in chunks]
    assert lexical_overlap(*pair) == (shared / (shared + small_only + 40), shared / len(quote))
    assert fold(chunks, orthogonal(2), CONFIG) == ([[1], [0]] if folds else [[], []])


def test_one_ulp_above_the_observed_overlap_does_not_fold() -> None:
    """`>=`, not `>`: the same pair folds with the threshold at its overlap and not with
    the next float above it."""
    common = words("wc", 3)
    chunks = [chunk("a.txt", 1, [*common, "wa0"]), chunk("a.txt", 2, [*common, "wb0"])]
    at = replace(CONFIG, duplicate_jaccard=0.6, duplicate_containment=1.0)
    above = replace(at, duplicate_jaccard=float(np.nextafter(0.6, 1.0)))
    assert fold(chunks, orthogonal(2), at) == [[1], [0]]
    assert fold(chunks, orthogonal(2), above) == [[], []]


def _pair_at_cosine(c: float) -> list[TokenBlock]:
    """Two one-token blocks whose vectors have cosine `c` (up to float32 rounding)."""
    return [block([1.0, 0.0, 0.0]), block([c, float(np.sqrt(1.0 - c * c)), 0.0])]


def _observed_cosine(chunks: list[Chunk], blocks: list[TokenBlock]) -> float:
    """The cosine the folding sees: the first own-text vector is (1, 0, 0), so the product
    of the two is the second's first component alone, exact in float32."""
    first, second = text_vectors(chunks, blocks)
    assert first.tolist() == [1.0, 0.0, 0.0]
    return float(second[0])


@pytest.mark.parametrize(("cosine", "folds"), [(0.81, True), (0.79, False)])
def test_cross_source_cosine_around_the_default(cosine: float, folds: bool) -> None:
    # No shared words at all: only the meaning of the two texts can fold them.
    chunks = [chunk("a.txt", 1, words("wa", 5)), chunk("b.txt", 1, words("wb", 5))]
    found = fold(chunks, _pair_at_cosine(cosine), CONFIG)
    assert found == ([[1], [0]] if folds else [[], []])


def test_cross_source_cosine_folds_exactly_at_the_threshold() -> None:
    chunks = [chunk("a.txt", 1, words("wa", 5)), chunk("b.txt", 1, words("wb", 5))]
    blocks = _pair_at_cosine(0.8)
    observed = _observed_cosine(chunks, blocks)
    at = replace(CONFIG, duplicate_cosine_cross_source=observed)
    # Scores are float32: the next float32 above, since a float64 step would round back.
    step = np.nextafter(np.float32(observed), np.float32(2.0))
    above = replace(CONFIG, duplicate_cosine_cross_source=float(step))
    assert fold(chunks, blocks, at) == [[1], [0]]
    assert fold(chunks, blocks, above) == [[], []]


def test_cosine_is_no_evidence_within_one_file() -> None:
    """Neighbouring paragraphs share their context and look alike: within one file only
    the words count."""
    chunks = [chunk("a.txt", 1, words("wa", 5)), chunk("a.txt", 2, words("wb", 5))]
    assert fold(chunks, _pair_at_cosine(0.99), CONFIG) == [[], []]


def test_context_tokens_are_left_out_of_the_cosine() -> None:
    """Only a chunk's own tokens make its text vector: two chunks whose contexts are
    identical but whose own texts are orthogonal do not fold."""
    own_a, own_b, shared_context = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]
    chunks = [
        replace(chunk("a.txt", 1, words("wa", 5)), context="Heading"),
        replace(chunk("b.txt", 1, words("wb", 5)), context="Heading"),
    ]
    offset = chunks[0].text_offset  # own text starts after "Heading\n"
    blocks = []
    for own in (own_a, own_b):
        b = block(shared_context, shared_context, shared_context, own)
        spans = np.array([[0, 7], [0, 7], [0, 7], [offset, offset + 3]], dtype=np.int32)
        blocks.append(replace(b, spans=spans))
    assert fold(chunks, blocks, CONFIG) == [[], []]
    # Counting the context (a bug), the mean vectors would have cosine 0.9 and fold.
    means = [b.embeddings.mean(axis=0) for b in blocks]
    cos = means[0] @ means[1] / (np.linalg.norm(means[0]) * np.linalg.norm(means[1]))
    assert cos > CONFIG.duplicate_cosine_cross_source


def test_the_finder_keeps_term_ids_and_sources_not_chunks(tmp_path: Path) -> None:
    """Per chunk: its source's number and its sorted term ids; the vectors go to a file
    in the folder, removed on close."""
    finder = DuplicateFinder(tmp_path / "dups", 3)
    finder.add(chunk("b.txt", 1, ["wz", "wy", "wz"]), np.array([1.0, 0.0, 0.0]))
    finder.add(chunk("a.txt", 1, ["wy", "wx"]), np.array([0.0, 1.0, 0.0]))
    finder.add(chunk("b.txt", 2, []), np.array([0.0, 0.0, 1.0]))
    assert list(finder.sources) == [0, 1, 0]
    assert list(finder._terms) == [0, 1, 1, 2]  # wz=0, wy=1; then wy=1, wx=2; then none
    assert list(finder._ends) == [2, 4, 4]
    with pytest.raises(ValueError, match="vector of 2 dimensions, expected 3"):
        finder.add(chunk("a.txt", 2, ["wx"]), np.array([1.0, 0.0]))
    assert finder.groups(CONFIG) == [[], [], []]
    vectors = tmp_path / "dups" / "text_vectors.f32"
    assert vectors.read_bytes() == np.eye(3, dtype=np.float32).tobytes()
    finder.close()
    assert not vectors.parent.exists()
