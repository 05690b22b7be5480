"""The retriever's signals and fused score on a tiny synthetic index (no model): each
signal equals its definition, the score is the weighted sum by name, switches and modes
do what the config says, filters hold, duplicates fold."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from rag.config import PipelineConfig, RetrieverConfig
from rag.embedder import EncodedQuestion
from rag.errors import UnknownSourceError
from rag.index.backend import CorpusStats, maxsim_records
from rag.index.store import Index
from rag.question import Question, analyse
from rag.retriever import SIGNALS, fused_weights, query_weights, retrieve, score_candidates
from rag.text import tokenize
from tests.rag.index import synthetic


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return synthetic.build(tmp_path / "index")


def _question(index: Index, text: str, of: int = 1) -> Question:
    """A question whose pooled vector and word pieces are those of chunk `of`'s text."""
    record = synthetic.records()[of]
    tokens = np.asarray(record.tokens[:3], dtype=np.float32)
    return analyse(text, EncodedQuestion(record.vector, tokens, record.token_ids[:3]))


def test_each_signal_is_its_definition(index: Index) -> None:
    question = _question(index, "When did the protests spread to Mashhad?")
    hits = score_candidates(index, question, RetrieverConfig())
    records = {r.id: r for r in index.records([h.chunk_id for h in hits], tokens=True)}
    raw = dict(
        zip(
            records,
            index.backend.lexical_scores(question.terms, list(records)),
            strict=True,
        )
    )
    best = max(raw.values())
    weights = index.stats.piece_idf(question.token_ids) ** 2  # RetrieverConfig.square_idf
    for hit in hits:
        record = records[hit.chunk_id]
        own, full = maxsim_records(question.tokens, weights, [record])
        assert set(hit.signals) == set(SIGNALS)
        assert hit.signals["dense"] == pytest.approx(float(record.vector @ question.vector))
        assert hit.signals["bm25"] == pytest.approx(raw[hit.chunk_id] / best)
        assert hit.signals["late"] == pytest.approx(float(own[0]), abs=1e-6)
        assert hit.signals["late_context"] == pytest.approx(float(full[0]), abs=1e-6)
        assert hit.signals["type"] == float(
            question.expects is not None and bool(question.expects.search(record.chunk.text))
        )
    # "When" expects a date: the chunks naming a month hold one.
    typed = {records[h.chunk_id].chunk.text for h in hits if h.signals["type"] == 1.0}
    assert typed == {
        "Tehran bazaar merchants went on strike in December.",
        "Oil exports fell sharply in January.",
    }


def test_the_score_is_the_weighted_sum_by_name(index: Index) -> None:
    question = _question(index, "Which cities did the protests reach?")
    config = RetrieverConfig()
    for hit in score_candidates(index, question, config):
        expected = sum(config.weights[name] * value for name, value in hit.signals.items())
        assert hit.score == pytest.approx(expected, abs=1e-12)


def test_switching_a_signal_off_by_name_removes_exactly_its_weight(index: Index) -> None:
    question = _question(index, "strike in Tehran")
    on = {h.chunk_id: h for h in score_candidates(index, question, RetrieverConfig())}
    off = score_candidates(index, question, RetrieverConfig(off=("bm25",)))
    for hit in off:
        assert hit.score == pytest.approx(on[hit.chunk_id].score - 0.1 * hit.signals["bm25"])
    assert fused_weights(RetrieverConfig(off=("bm25", "type")))["type"] == 0.0
    with pytest.raises(ValueError, match="valid choices"):
        fused_weights(RetrieverConfig(off=("colour",)))


def test_modes_rank_by_one_signal(index: Index) -> None:
    question = _question(index, "strike in Tehran")
    dense = score_candidates(index, question, RetrieverConfig(mode="dense"))
    assert [h.score for h in dense] == [h.signals["dense"] for h in dense]
    assert [h.score for h in dense] == sorted((h.score for h in dense), reverse=True)
    bm25 = score_candidates(index, question, RetrieverConfig(mode="bm25"))
    assert bm25[0].score == 1.0 and all(h.signals["late"] == 0.0 for h in bm25)
    # Without late interaction its weights go to the pooled cosine.
    pooled = fused_weights(RetrieverConfig(late_interaction=False))
    assert pooled == {"dense": 0.8, "bm25": 0.1, "type": 0.1}


def test_bm25_is_normalised_by_the_best_candidate(index: Index) -> None:
    question = _question(index, "strike")
    hits = score_candidates(index, question, RetrieverConfig())
    assert max(h.signals["bm25"] for h in hits) == 1.0
    strike = [h for h in hits if "strike" in tokenize(index.chunk(h.chunk_id).embedded)]
    assert len(strike) == 2 and all(h.signals["bm25"] > 0 for h in strike)


def test_sources_restrict_every_hit(index: Index) -> None:
    question = _question(index, "strike protests unrest")
    hits, by_id = retrieve(index, question, 5, RetrieverConfig(), frozenset({"b.txt"}))
    assert {index.chunk(h.chunk_id).source for h in hits} == {"b.txt"}
    assert {index.chunk(c).source for c in by_id} == {"b.txt"}
    with pytest.raises(UnknownSourceError, match=r"'z\.txt'"):
        index.check_sources(["b.txt", "z.txt"])
    assert index.check_sources("b.txt") == frozenset({"b.txt"})  # one name, not letters
    assert index.check_sources(None) is None


def test_duplicates_fold_into_the_better_hit(tmp_path: Path) -> None:
    records = synthetic.records()
    a, b = records[1].id, records[4].id  # "protests spread" and "protests have peaked"
    index = synthetic.build(tmp_path / "index", duplicates={a: (b,), b: (a,)})
    question = _question(index, "protests", of=1)
    hits, by_id = retrieve(index, question, 10, RetrieverConfig())
    kept = [h.chunk_id for h in hits]
    assert (a in kept) != (b in kept)
    lead = next(h for h in hits if h.chunk_id in (a, b))
    assert lead.also_in == [b if lead.chunk_id == a else a]
    assert {a, b} <= set(by_id)


def test_ties_go_to_the_chunk_earlier_in_the_corpus(index: Index) -> None:
    question = _question(index, "nothing in common")
    config = replace(PipelineConfig().retriever, weights={"type": 1.0})  # all score 0
    hits = score_candidates(index, question, config)
    chunks = [index.chunk(h.chunk_id) for h in hits]
    assert [(c.source, c.start) for c in chunks] == sorted((c.source, c.start) for c in chunks)


def test_question_pieces_weigh_their_idf_squared_or_plain() -> None:
    # 3 chunks; pieces 0, 1, 2 occur in 0, 1 and 3 of them; piece 7 is past the table.
    stats = CorpusStats(chunks=3, piece_df=np.array([0, 1, 3]), term_df=lambda t: 0)
    index = SimpleNamespace(stats=stats)
    question = SimpleNamespace(token_ids=np.array([0, 1, 2, 7]))
    idf = [np.log(4) + 1, np.log(2) + 1, 1.0, np.log(4) + 1]
    plain = query_weights(index, question, square=False)  # type: ignore[arg-type]
    squared = query_weights(index, question)  # type: ignore[arg-type]
    assert plain.tolist() == pytest.approx(idf, abs=1e-12)
    assert squared.tolist() == pytest.approx([v * v for v in idf], abs=1e-12)
    assert squared.tolist() == pytest.approx([5.6944, 2.8667, 1.0, 5.6944], abs=1e-4)


def test_square_idf_off_gives_late_interaction_its_plain_idf(index: Index) -> None:
    question = _question(index, "When did the protests spread to Mashhad?")
    config = RetrieverConfig(square_idf=False)
    hits = score_candidates(index, question, config)
    records = {r.id: r for r in index.records([h.chunk_id for h in hits], tokens=True)}
    plain = index.stats.piece_idf(question.token_ids)
    for hit in hits:
        own, full = maxsim_records(question.tokens, plain, [records[hit.chunk_id]])
        assert hit.signals["late"] == pytest.approx(float(own[0]), abs=1e-6)
        assert hit.signals["late_context"] == pytest.approx(float(full[0]), abs=1e-6)
    # The switch changes the late signals wherever the pieces' IDFs differ.
    squared = {
        h.chunk_id: h.signals["late"] for h in score_candidates(index, question, RetrieverConfig())
    }
    assert any(abs(squared[h.chunk_id] - h.signals["late"]) > 1e-6 for h in hits)
