"""scripts/evaluate.py and rag.evaluation: importers on hand-written SQuAD/BEIR fixtures,
scoring, --compare columns, gates, and command-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

import httpx
import pytest

from rag.config import AnswererConfig, PipelineConfig, RetrieverConfig
from rag.embedder import Embedder
from rag.evaluation import formats, metrics, report, runner
from rag.evaluation.formats import Question
from rag.index import build_index, load_index
from rag.pipeline import QA
from tests.servers import ROOT

EVAL = ROOT / "tests" / "fixtures" / "eval"
SCRIPT = ROOT / "scripts" / "evaluate.py"


def evaluate(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--no-progress", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- importers -----------------------------------------------------------------------


def test_squad_v1_article_layout(tmp_path: Path) -> None:
    imported = formats.import_squad(EVAL / "squad-v1.1.json", tmp_path)
    alpha, beta = "000_Alpha_Town.txt", "001_Beta_Lake.txt"
    assert [q.to_dict() for q in imported.questions] == [
        {
            "id": "q1",
            "question": "When was Alpha Town founded?",
            "gold": [{"source": alpha, "paragraph": 1}],
            "answer_any": ["1850", "in 1850"],
            "kind": "squad",
        },
        {
            "id": "q2",
            "question": "Who founded Alpha Town?",
            "gold": [{"source": alpha, "paragraph": 1}],
            "answer_any": ["river traders"],  # duplicate gold answers collapse
            "kind": "squad",
        },
        {
            "id": "q3",
            "question": "How tall is the clock tower of the town hall?",
            "gold": [{"source": alpha, "paragraph": 2}],
            "answer_any": ["40 metres"],
            "kind": "squad",
        },
        {
            "id": "q4",
            "question": "How deep is Beta Lake?",
            "gold": [{"source": beta, "paragraph": 1}],
            "answer_any": ["310 metres"],
            "kind": "squad",
        },
    ]
    assert imported.dropped == []
    assert sorted(p.name for p in imported.corpus.iterdir()) == [alpha, beta]
    lines = (imported.corpus / alpha).read_text().splitlines()
    # The line break inside the second context became a space: one context, one line.
    assert lines[1] == (
        "The town hall was built of red brick in 1901. "
        "Its clock tower is 40 metres tall and can be seen from the valley."
    )
    # The written set round-trips through the question-set reader.
    assert formats.load_questions(tmp_path / "questions.jsonl") == imported.questions


def test_squad_context_layout_and_article_limit(tmp_path: Path) -> None:
    imported = formats.import_squad(
        EVAL / "squad-v1.1.json", tmp_path, articles=1, layout="context"
    )
    assert sorted(p.name for p in imported.corpus.iterdir()) == [
        "000_000_Alpha_Town.txt",
        "000_001_Alpha_Town.txt",
    ]
    assert [(q.id, q.gold) for q in imported.questions] == [
        ("q1", (("000_000_Alpha_Town.txt", 1),)),
        ("q2", (("000_000_Alpha_Town.txt", 1),)),
        ("q3", (("000_001_Alpha_Town.txt", 1),)),
    ]


def test_squad_v2_impossible_questions_become_unanswerable(tmp_path: Path) -> None:
    imported = formats.import_squad(EVAL / "squad-v2.0.json", tmp_path)
    name = "000_Gamma_Bridge.txt"
    assert imported.questions == [
        Question("g-open", "When did Gamma Bridge open?", ((name, 1),), ("March 1988",), "squad"),
        Question("g-toll", "How much is the toll on Gamma Bridge?", (), None, "unanswerable"),
        # Paragraph 2 ("Gamma Bridge facts") is a heading to the chunker: never indexed,
        # so its question is dropped, and paragraph 3 keeps its number.
        Question(
            "g-lanes",
            "How many lanes does the bridge carry?",
            ((name, 3),),
            ("six lanes", "six"),
            "squad",
        ),
    ]
    assert imported.dropped == ["g-heading: its context is a heading, never indexed"]


def test_squad_rejects_other_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(formats.QuestionSetError, match="not SQuAD JSON"):
        formats.import_squad(bad, tmp_path / "out")


def test_beir_document_layout(tmp_path: Path) -> None:
    beir = formats.import_beir(EVAL / "beir", tmp_path)
    # q9 has no judgement in qrels/test.tsv, so it is not part of the run.
    assert beir.queries == {
        "q1": "zebra migration Serengeti",
        "q2": "how is green tea brewed",
        "q3": "where are basalt columns found",
    }
    assert beir.qrels == {
        "q1": {"d1": 2, "d2": 1},
        "q2": {"d4": 1, "d5": 1},
        "q3": {"d/6": 1, "d3": 0},
    }
    # Title as a Markdown heading (paragraph 1), text as paragraph 2; no title: 1 line.
    assert beir.doc_of == {
        ("d1.md", 2): "d1",
        ("d2.md", 2): "d2",
        ("d3.md", 2): "d3",
        ("d4.md", 2): "d4",
        ("d5.md", 1): "d5",
        ("d_6.md", 2): "d/6",
    }
    assert (beir.corpus / "d1.md").read_text() == (
        "# Zebra migration\n"
        "Each year the zebra herds of the Serengeti migrate north across the plains in "
        "search of rain.\n"
    )


def test_beir_paragraph_layout(tmp_path: Path) -> None:
    beir = formats.import_beir(EVAL / "beir", tmp_path, layout="paragraph")
    assert beir.doc_of == {
        ("part-00000.txt", 1): "d1",
        ("part-00000.txt", 2): "d2",
        ("part-00000.txt", 3): "d3",
        ("part-00000.txt", 4): "d4",
        ("part-00000.txt", 5): "d5",
        ("part-00000.txt", 6): "d/6",
    }
    first = (beir.corpus / "part-00000.txt").read_text().splitlines()[0]
    assert first.startswith("Zebra migration Each year the zebra herds")


def test_beir_document_starting_with_a_list_number(tmp_path: Path) -> None:
    """SciFact abstracts such as doc 6083952 start "1. Incubation of ...": the chunker
    cites that line without its number, and the import accepts it."""
    source = tmp_path / "beir"
    (source / "qrels").mkdir(parents=True)
    (source / "corpus.jsonl").write_text(
        json.dumps({"_id": "n1", "title": "Numbered", "text": "1. Cells were grown. 2. Then"})
        + "\n"
    )
    (source / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "cells"}) + "\n")
    (source / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tn1\t1\n")
    beir = formats.import_beir(source, tmp_path / "out")
    assert beir.doc_of == {("n1.md", 2): "n1"}


def test_beir_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(formats.QuestionSetError, match=r"corpus\.jsonl"):
        formats.import_beir(tmp_path, tmp_path / "out")


# --- question sets -------------------------------------------------------------------


def test_load_questions_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    good = {"id": "a", "question": "Q?", "gold": [], "answer_any": None, "kind": "unanswerable"}
    bad = {**good, "id": "b", "gold": [{"source": "x.txt", "paragraph": 0}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(formats.QuestionSetError) as err:
        formats.load_questions(path)
    message = str(err.value)
    assert f"{path}:2: gold entry" in message
    assert f"{path}:3: duplicate id 'a'" in message


def test_reader_is_lenient_where_a_foreign_set_may_differ(tmp_path: Path) -> None:
    # A held-out set may carry extra fields, other kind labels, or gold without phrases.
    row = {
        "id": "x",
        "question": "Q?",
        "gold": [{"source": "a.txt", "paragraph": 2}],
        "answer_any": None,
        "kind": "people",
        "notes": "written by the judges",
    }
    assert formats.problems(row) == []
    assert formats.problems(row, strict=True) == [
        "unknown fields ['notes']",
        "'answer_any' must list phrases when gold is given",
    ]
    # Without phrases the question counts for retrieval only, not for answer_match.
    outcome = runner.score(
        formats.parse_question(row), {"answer": "a", "citations": []}, dict().get, 0.0
    )
    assert outcome.answer_match is None
    assert metrics.summarize([outcome])["answer_match"] is None


def test_spread_samples_evenly() -> None:
    assert formats.spread(list(range(10)), 3) == [0, 3, 6]
    assert formats.spread(list(range(4)), 10) == [0, 1, 2, 3]
    assert formats.spread(list(range(4)), None) == [0, 1, 2, 3]


# --- scoring -------------------------------------------------------------------------

TEXT = "Heading\nAlpha Town was founded in 1850. It is old.\n"


def test_score_reads_the_api_json() -> None:
    q = Question("q", "When?", (("a.txt", 2),), ("1850",), "fact")
    result = {
        "answer": "Alpha Town was founded in 1850.",
        "answer_source": {"source": "a.txt", "paragraph": 2, "start": 8, "end": 39},
        "citations": [
            {"source": "b.txt", "paragraph": 1, "start": 0, "end": 4, "text": "nope"},
            {"source": "a.txt", "paragraph": 2, "start": 8, "end": 47, "text": TEXT[8:47]},
        ],
    }
    files = {"a.txt": TEXT, "b.txt": "nope"}
    outcome = runner.score(q, result, files.get, 0.01)
    assert outcome.rank == 2
    assert outcome.answered and outcome.answer_match
    assert outcome.citations_verbatim == (True, True)
    assert outcome.answer_verbatim is True
    # An answer whose offsets are off by one is not verbatim.
    shifted = {**result, "answer_source": {**result["answer_source"], "start": 9}}
    assert runner.score(q, shifted, files.get, 0.01).answer_verbatim is False


def test_failed_reasons() -> None:
    q = Question("u", "Who won?", (), None, "unanswerable")
    answered = {"answer": "x", "answer_source": None, "citations": []}
    record = runner.Record(q, answered, runner.score(q, answered, lambda s: None, 0.0))
    assert record.failed == [
        "answered an unanswerable question",
        "text not verbatim at its offsets",
    ]
    null = {"answer": None, "answer_source": None, "citations": []}
    assert runner.Record(q, null, runner.score(q, null, lambda s: None, 0.0)).failed == []


def test_http_target_rebuilds_file_text_from_paragraphs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sources":
            return httpx.Response(200, json={"sources": [{"source": "a.txt", "chars": len(TEXT)}]})
        if request.url.path == "/sources/a.txt":
            paras = [(1, 0, 7), (2, 8, 47)]
            return httpx.Response(
                200,
                json={
                    "paragraphs": [
                        {"paragraph": n, "start": s, "end": e, "text": TEXT[s:e]}
                        for n, s, e in paras
                    ]
                },
            )
        return httpx.Response(404)

    target = runner.HttpTarget("http://test", transport=httpx.MockTransport(handler))
    text = target.file_text("a.txt")
    assert text is not None and len(text) == len(TEXT)
    assert text[8:47] == TEXT[8:47]
    assert text[7] == "\0"  # unknown characters between paragraphs never match
    assert target.file_text("missing.txt") is None


# --- verbatim is checked against the files on disk -----------------------------------


def test_corpus_files_are_read_from_disk(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text(TEXT, encoding="utf-8")
    (corpus / "sub" / "b.md").write_bytes("\ufeffCaf\u00e9\r\n".encode())
    (tmp_path / "outside.txt").write_text(TEXT)
    files = runner.CorpusFiles(corpus)
    assert files("a.txt") == TEXT
    assert files("sub/b.md") == "\ufeffCaf\u00e9\r\n"  # decoded as the corpus reader does
    # Not a file of the corpus: no text, so nothing cited from it is verbatim.
    for name in ("missing.txt", "../outside.txt", "sub"):
        assert files(name) == ""
    q = Question("q", "When?", (("a.txt", 2),), ("1850",), "fact")
    cited = {"source": "../outside.txt", "paragraph": 2, "start": 8, "end": 47}
    result = {"answer": None, "answer_source": None, "citations": [{**cited, "text": TEXT[8:47]}]}
    assert runner.score(q, result, files, 0.0).citations_verbatim == (False,)


def test_http_target_checks_against_the_corpus_not_the_server(tmp_path: Path) -> None:
    """A server whose /sources agrees with its own citations, over a file that says
    something else on disk: with the corpus given, the citation is not verbatim."""
    served = TEXT.replace("1850", "1851")
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/sources":
            return httpx.Response(
                200, json={"sources": [{"source": "a.txt", "chars": len(served)}]}
            )
        if request.url.path == "/sources/a.txt":
            para = {"paragraph": 2, "start": 8, "end": 47, "text": served[8:47]}
            return httpx.Response(200, json={"paragraphs": [para]})
        return httpx.Response(404)

    cite = {"source": "a.txt", "paragraph": 2, "start": 8, "end": 47, "text": served[8:47]}
    result = {"answer": None, "answer_source": None, "citations": [cite]}
    q = Question("q", "When?", (("a.txt", 2),), ("1850",), "fact")
    itself = runner.HttpTarget("http://test", transport=httpx.MockTransport(handler))
    on_disk = runner.HttpTarget(
        "http://test", transport=httpx.MockTransport(handler), corpus=tmp_path
    )
    assert runner.score(q, result, itself.file_text, 0.0).citations_verbatim == (True,)
    assert runner.score(q, result, on_disk.file_text, 0.0).citations_verbatim == (False,)


@pytest.mark.slow
def test_verbatim_gate_fails_when_the_files_on_disk_differ_from_the_index(
    tmp_path: Path, seed_index_dir: Path
) -> None:
    """The index answers from its own copy of the articles; a file changed on disk since
    the build makes the answers taken from it not verbatim, and --min-verbatim 1.0 fails."""
    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "seeds", corpus)
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps(
            {
                "id": "begin",
                "question": "When did the protests in Iran begin?",
                "gold": [],
                "answer_any": None,
                "kind": "fact",
            }
        )
        + "\n"
    )
    args = ["--index", str(seed_index_dir), "--questions", str(questions), "--top-k", "3"]
    same = evaluate(*args, "--corpus", str(corpus), "--min-verbatim", "1.0")
    assert same.returncode == 0, same.stdout + same.stderr
    # Every seed file edited on disk (a word added at the top), the index unchanged.
    for f in corpus.glob("*.txt"):
        f.write_text("Updated. " + f.read_text(encoding="utf-8"), encoding="utf-8")
    changed = evaluate(*args, "--corpus", str(corpus), "--min-verbatim", "1.0")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "GATE FAILED: verbatim = " in changed.stderr


# --- configurations and gates ---------------------------------------------------------


def bools(section: object) -> list[str]:
    return [f.name for f in fields(section) if isinstance(getattr(section, f.name), bool)]


def test_configurations_come_from_the_config_dataclasses() -> None:
    # The answerer's flags change as it is tuned, so nothing here names one.
    base = PipelineConfig()
    columns = runner.configurations(base)
    names = [name for name, _ in columns]
    # Retriever columns: every value of RetrieverConfig.mode, the default marked *.
    assert names[:3] == ["mode=hybrid*", "mode=dense", "mode=bm25"]
    assert dict(columns)["mode=dense"].retriever.mode == "dense"
    # Then one column per boolean field of RetrieverConfig, one per weighed signal of the
    # fused score switched off by name, one per boolean field of AnswererConfig.
    state = {True: "off", False: "on"}
    r_flags, a_flags = bools(base.retriever), bools(base.answerer)
    assert a_flags, "AnswererConfig has no boolean feature flag left to compare"
    signals = [n for n, w in base.retriever.weights.items() if w]
    assert signals == ["late", "late_context", "bm25", "type"]
    # Then the answerer's other scorers, its boolean flags, and each sentence feature its
    # scorer reads switched off by name.
    scorers = [s for s in runner.answerer_scorers() if s != base.answerer.scorer]
    assert scorers, "only one answer scorer left to compare"
    features = list(runner.answerer_features(base.answerer))
    assert names[3:] == [
        *(f"retriever.{b}={state[getattr(base.retriever, b)]}" for b in r_flags),
        *(f"retriever.signal.{s}=off" for s in signals),
        *(f"scorer={s}" for s in scorers),
        *(f"{b}={state[getattr(base.answerer, b)]}" for b in a_flags),
        *(f"feature.{f}=off" for f in features),
    ]
    by_name = dict(columns)
    for s in signals:
        assert by_name[f"retriever.signal.{s}=off"].retriever.off == (s,)
    for s in scorers:
        assert by_name[f"scorer={s}"].answerer == replace(base.answerer, scorer=s)
    for f in features:
        assert by_name[f"feature.{f}=off"].answerer.off == (*base.answerer.off, f)
    flipped = [("retriever", b) for b in r_flags] + [("answerer", b) for b in a_flags]
    first_flag = 3 + len(r_flags) + len(signals) + len(scorers)
    kept = columns[3 : 3 + len(r_flags)] + columns[first_flag : first_flag + len(a_flags)]
    for (_, config), (section, flag) in zip(kept, flipped, strict=True):
        changed = [
            (s, f)
            for s, f in flipped
            if getattr(getattr(config, s), f) != getattr(getattr(base, s), f)
        ]
        assert changed == [(section, flag)]


def test_a_new_answerer_flag_gets_a_column(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Extended(AnswererConfig):
        rerank: bool = False

    monkeypatch.setattr(runner, "AnswererConfig", Extended)
    names = [name for name, _ in runner.configurations(PipelineConfig(answerer=Extended()))]
    flags = [n for n in names if not n.startswith(("mode=", "retriever.", "scorer=", "feature."))]
    assert flags[-1] == "rerank=on"


@pytest.mark.slow  # runs the script in a subprocess (imports torch)
def test_help_lists_the_compare_configurations() -> None:
    out = evaluate("--help", timeout=120)
    assert out.returncode == 0
    names = [n.rstrip("*") for n, _ in runner.configurations(PipelineConfig())]
    assert {"mode=hybrid", "mode=dense", "mode=bm25"} <= set(names)
    for name in names:
        assert name.replace("=on", "=off") in out.stdout
    for gate in report.GATES:
        assert gate.flag in out.stdout


def test_check_gates() -> None:
    figures = {"hit@1": 0.8, "hit@5": 0.95, "false_abstention": 0.2, "abstain_unanswerable": None}
    assert report.check_gates(figures, {"--min-hit1": 0.8, "--min-hit5": 0.9}) == []
    failures = report.check_gates(
        figures,
        {"--min-hit1": 0.85, "--max-false-abstention": 0.1, "--min-abstain": 0.5},
    )
    assert failures == [
        "hit@1 = 0.800 is below --min-hit1 0.85",
        "abstain_unanswerable was not measured on this set (--min-abstain 0.5)",
        "false_abstention = 0.200 is above --max-false-abstention 0.1",
    ]


@pytest.mark.slow  # runs the script in a subprocess (imports torch)
def test_missing_index_names_rag_index(tmp_path: Path) -> None:
    out = evaluate("--index", str(tmp_path / "nowhere"), timeout=120)
    assert out.returncode == 2
    assert "rag index --corpus seeds --out" in out.stderr


@pytest.mark.slow  # runs the script in a subprocess (imports torch)
def test_usage_errors() -> None:
    out = evaluate("--url", "http://127.0.0.1:9", "--compare", timeout=120)
    assert out.returncode == 2 and "--compare" in out.stderr
    out = evaluate("--top-k", "50", timeout=120)
    assert out.returncode == 2 and "between 1 and 20" in out.stderr


# --- end to end on the fixtures (real model) ------------------------------------------


@pytest.mark.slow
def test_squad_fixture_in_process(tmp_path: Path, embedder: Embedder) -> None:
    imported = formats.import_squad(EVAL / "squad-v1.1.json", tmp_path)
    build_index(imported.corpus, tmp_path / "index", PipelineConfig(), embedder=embedder)
    qa = QA.load(tmp_path / "index", embedder=embedder)
    records = runner.run_questions(imported.questions, runner.LibraryTarget(qa), 10, False)
    figures = metrics.summarize([r.outcome for r in records])
    # Three paragraphs, four plain questions: every gold paragraph is cited first.
    assert (figures["hit@1"], figures["hit@5"], figures["mrr@10"]) == (1.0, 1.0, 1.0)
    assert figures["verbatim"] == 1.0
    assert figures["abstain_unanswerable"] is None  # v1.1 has no unanswerable question


@pytest.mark.slow
def test_beir_fixture_bm25_scores_by_hand(tmp_path: Path, embedder: Embedder) -> None:
    beir = formats.import_beir(EVAL / "beir", tmp_path)
    build_index(beir.corpus, tmp_path / "index", PipelineConfig(), embedder=embedder)
    qa = QA(load_index(tmp_path / "index"), embedder)
    summary, rows = runner.run_beir(qa, beir, RetrieverConfig(mode="bm25"), 100, False)
    by_id = {r["id"]: r for r in rows}
    # BM25 ranks only documents sharing a word with the query:
    # q1 -> [d1 (grade 2), d2 (grade 1)]: the ideal order, nDCG 1, recall 2/2.
    # q2 -> [d4]; d5 (relevant) shares no word: DCG 1, IDCG 1 + 1/log2(3) = 1.63093,
    #       nDCG 0.61315, recall 1/2.
    # q3 -> [d/6, d3 (grade 0)]: DCG 1 = IDCG, nDCG 1, recall 1/1.
    assert by_id["q1"]["top10"] == ["d1", "d2"]
    assert by_id["q2"]["top10"] == ["d4"]
    assert by_id["q3"]["top10"] == ["d/6", "d3"]
    assert by_id["q2"]["ndcg@10"] == pytest.approx(0.61315, abs=1e-5)
    # means: nDCG (1 + 0.61315 + 1) / 3 = 0.87105; recall (1 + 0.5 + 1) / 3 = 0.83333
    assert summary["ndcg@10"] == pytest.approx(0.87105, abs=1e-5)
    assert summary["recall@100"] == pytest.approx(0.83333, abs=1e-5)
    # Dense candidates reach every document of this tiny corpus, d5 included.
    hybrid, _ = runner.run_beir(qa, beir, RetrieverConfig(), 100, False)
    assert hybrid["recall@100"] == 1.0


@pytest.mark.slow
def test_cli_squad_v2_gates_json_and_failures(tmp_path: Path) -> None:
    out_json = tmp_path / "out.json"
    args = ["--squad", str(EVAL / "squad-v2.0.json"), "--cache-dir", str(tmp_path / "cache")]
    out = evaluate(*args, "--out", str(out_json), "--show-failures", "--min-hit1", "1.01")
    assert out.returncode == 1, out.stderr
    assert "GATE FAILED: hit@1 = " in out.stderr and "--min-hit1 1.01" in out.stderr
    data = json.loads(out_json.read_text())
    assert data["count"] == 2 + 1  # g-open, g-toll, g-lanes
    assert set(metrics.METRICS) <= set(data["metrics"])
    assert data["metrics"]["unanswerable"] == 1
    assert [r["id"] for r in data["records"]] == ["g-open", "g-toll", "g-lanes"]
    assert "failures (library*)" in out.stdout
    # The second run reuses the cached corpus and index, and passes a reachable gate.
    again = evaluate(*args, "--min-verbatim", "1.0")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "building index" not in again.stderr
