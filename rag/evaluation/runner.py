"""Run a question set through the library or a server, and score every answer.

Two targets answer questions the same way the metrics read them (the API's JSON):
- `LibraryTarget` calls `QA.ask` in this process;
- `HttpTarget` posts to `POST /ask` of a running server.
Citations and answers are checked verbatim against the articles on disk (`CorpusFiles`),
not against the index's or the server's own copy, which would check them against
themselves. Without a corpus folder the targets fall back to that copy, which checks
only that offsets and text agree inside the index.

`configurations` derives the `--compare` columns from the config dataclasses
themselves, so a new retriever mode or a new answerer flag shows up without editing
this file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import sys
import time
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.config import AnswererConfig, PipelineConfig, RetrieverConfig
from rag.embedder import Embedder
from rag.evaluation import metrics
from rag.evaluation.formats import BeirSet, Imported, Key, Question
from rag.index import build_index, load_index, stale_reason
from rag.pipeline import QA

# Bump when an importer changes what it writes, so cached corpora are rebuilt.
IMPORT_VERSION = 1


class Target(Protocol):
    """Something that answers questions like POST /ask and serves the files' text."""

    name: str

    def ask(self, question: str, top_k: int) -> dict[str, Any]: ...

    def file_text(self, source: str) -> str | None: ...


class CorpusFiles:
    """The articles as they are on disk, decoded as UTF-8 like the corpus reader does.
    A source that is not a file of the folder has no text (""), so nothing cited from it
    counts as verbatim."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).resolve()
        self._texts: dict[str, str] = {}

    def __call__(self, source: str) -> str:
        if source not in self._texts:
            path = (self.folder / source).resolve()
            try:
                inside = path.is_relative_to(self.folder) and path.is_file()
                text = path.read_bytes().decode("utf-8") if inside else ""
            except (OSError, UnicodeDecodeError):
                text = ""
            self._texts[source] = text
        return self._texts[source]


class LibraryTarget:
    def __init__(self, qa: QA, name: str = "library", corpus: Path | None = None) -> None:
        self.qa = qa
        self.name = name
        self._files = CorpusFiles(corpus) if corpus is not None else None

    def ask(self, question: str, top_k: int) -> dict[str, Any]:
        return self.qa.ask(question, top_k).to_dict()

    def file_text(self, source: str) -> str | None:
        if self._files is not None:
            return self._files(source)
        doc = self.qa.index.documents.get(source)
        return None if doc is None else doc.text


class HttpTarget:
    """A running server. Citations are checked against the paragraphs GET /sources/{name}
    returns: the file's text is rebuilt at the served offsets, with NUL between
    paragraphs, so any span inside one paragraph compares exactly."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        transport: Any = None,
        corpus: Path | None = None,
    ) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.name = url
        self.client = httpx.Client(
            base_url=url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._texts: dict[str, str | None] = {}
        self._chars: dict[str, int] | None = None
        self._files = CorpusFiles(corpus) if corpus is not None else None

    def ask(self, question: str, top_k: int) -> dict[str, Any]:
        response = self.client.post("/ask", json={"question": question, "top_k": top_k})
        if response.status_code != 200:
            raise RuntimeError(f"POST /ask answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def file_text(self, source: str) -> str | None:
        if self._files is not None:
            return self._files(source)
        if source not in self._texts:
            self._texts[source] = self._fetch(source)
        return self._texts[source]

    def _fetch(self, source: str) -> str | None:
        from urllib.parse import quote

        if self._chars is None:
            listing = self.client.get("/sources")
            listing.raise_for_status()
            self._chars = {s["source"]: s["chars"] for s in listing.json()["sources"]}
        if source not in self._chars:
            return None
        detail = self.client.get(f"/sources/{quote(source)}")
        if detail.status_code != 200:
            return None
        text = ["\0"] * self._chars[source]
        for para in detail.json()["paragraphs"]:
            text[para["start"] : para["end"]] = para["text"]
        return "".join(text)

    def close(self) -> None:
        self.client.close()


def score(
    question: Question,
    result: dict[str, Any] | None,
    file_text: Callable[[str], str | None],
    latency: float | None,
    error: str | None = None,
) -> metrics.Outcome:
    """One answered question (the API's JSON) as an Outcome."""
    if result is None:
        return metrics.Outcome(
            question.id, question.kind, question.answerable, latency=latency, error=error
        )
    citations = result.get("citations") or []
    checks = tuple(
        metrics.verbatim(file_text(c["source"]), c["start"], c["end"], c["text"]) for c in citations
    )
    answer, src = result.get("answer"), result.get("answer_source")
    answer_verbatim = None
    if answer is not None:
        answer_verbatim = (
            False
            if src is None
            else metrics.verbatim(file_text(src["source"]), src["start"], src["end"], answer)
        )
    return metrics.Outcome(
        id=question.id,
        kind=question.kind,
        answerable=question.answerable,
        rank=metrics.first_gold_rank(citations, question.gold),
        answered=answer is not None,
        answer_match=(
            metrics.phrase_match(answer, question.answer_any) if question.answer_any else None
        ),
        citations_verbatim=checks,
        answer_verbatim=answer_verbatim,
        latency=latency,
    )


@dataclass
class Record:
    """A question, what the system returned, and how it scored."""

    question: Question
    result: dict[str, Any] | None
    outcome: metrics.Outcome

    @property
    def failed(self) -> list[str]:
        """Why this question counts against the figures (empty when it does not)."""
        o, q = self.outcome, self.question
        if o.error:
            return [f"error: {o.error}"]
        reasons = []
        if q.answerable:
            if o.rank != 1:
                reasons.append("gold not cited first" if o.rank else "gold not cited")
            if not o.answered:
                reasons.append("abstained")
            elif o.answer_match is False:
                reasons.append("answer lacks every expected phrase")
        elif o.answered:
            reasons.append("answered an unanswerable question")
        if False in o.citations_verbatim or o.answer_verbatim is False:
            reasons.append("text not verbatim at its offsets")
        return reasons

    def to_dict(self) -> dict[str, Any]:
        r = self.result or {}
        return {
            **self.question.to_dict(),
            "got": {
                "answer": r.get("answer"),
                "answer_source": r.get("answer_source"),
                "confidence": r.get("confidence"),
                "citations": [
                    {
                        "source": c["source"],
                        "paragraph": c["paragraph"],
                        "score": c.get("score"),
                        "also_in": c.get("also_in", []),
                    }
                    for c in r.get("citations") or []
                ],
            },
            "rank": self.outcome.rank,
            "answer_match": self.outcome.answer_match,
            "latency_ms": None
            if self.outcome.latency is None
            else round(self.outcome.latency * 1000, 2),
            "error": self.outcome.error,
            "failed": self.failed,
        }


def progress_bar(items: Sequence, desc: str, enabled: bool | None) -> Any:
    """tqdm over `items` on a terminal (stderr), plain iteration otherwise."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(items, desc=desc, disable=not show, leave=False, file=sys.stderr)


def run_questions(
    questions: Sequence[Question],
    target: Target,
    top_k: int = 10,
    progress: bool | None = None,
    desc: str = "questions",
) -> list[Record]:
    """Ask every question one at a time (so latency is per question). One warm-up call
    comes first so that the model's first-call cost does not land in p95."""
    if questions:
        with contextlib.suppress(Exception):  # the real call below records any error
            target.ask(questions[0].question, top_k)
    records = []
    for q in progress_bar(questions, desc, progress):
        started = time.perf_counter()
        try:
            result, error = target.ask(q.question, top_k), None
        except Exception as exc:  # a failed question is a scored failure
            result, error = None, f"{type(exc).__name__}: {exc}"
        latency = time.perf_counter() - started
        records.append(Record(q, result, score(q, result, target.file_text, latency, error)))
    return records


def retriever_modes() -> tuple[str, ...]:
    """The values RetrieverConfig.mode accepts, read from its Literal annotation."""
    hint = typing.get_type_hints(RetrieverConfig)["mode"]
    return tuple(typing.get_args(hint))


def bool_flags(cls: type) -> tuple[str, ...]:
    """The boolean fields of a config dataclass: the stage's switchable features."""
    hints = typing.get_type_hints(cls)
    return tuple(f.name for f in dataclasses.fields(cls) if hints[f.name] is bool)


def answerer_flags() -> tuple[str, ...]:
    return bool_flags(AnswererConfig)


def retriever_flags() -> tuple[str, ...]:
    return bool_flags(RetrieverConfig)


def retriever_signals(base: RetrieverConfig | None = None) -> tuple[str, ...]:
    """The retriever's signals that weigh in `base`'s fused score (rag.retriever.SIGNALS):
    `--compare` switches each off by name."""
    from rag.retriever import fused_weights

    weights = fused_weights(base or RetrieverConfig())
    return tuple(name for name, weight in weights.items() if weight)


def _flip(section: Any, flag: str) -> tuple[Any, str]:
    value = not getattr(section, flag)
    return replace(section, **{flag: value}), "on" if value else "off"


def configurations(base: PipelineConfig, answerer: bool = True) -> list[tuple[str, PipelineConfig]]:
    """`--compare` columns: each retriever mode; each boolean feature of the retriever
    flipped (named `retriever.<flag>=off`); each signal of the fused score switched off
    by name (`retriever.signal.<name>=off`); the answerer's other scorer
    (`scorer=hand` / `scorer=learned`); each boolean feature of the answerer flipped
    (`<flag>=off`; a feature off by default is switched on instead); each sentence
    feature the answerer's scorer reads switched off by name (`feature.<name>=off`). The
    column equal to `base` is marked with '*' and holds the figures the gates check."""
    columns = []
    for mode in retriever_modes():
        config = replace(base, retriever=replace(base.retriever, mode=mode))
        columns.append((f"mode={mode}" + ("*" if config == base else ""), config))
    for flag in retriever_flags():
        section, state = _flip(base.retriever, flag)
        columns.append((f"retriever.{flag}={state}", replace(base, retriever=section)))
    for name in retriever_signals(base.retriever):
        section = replace(base.retriever, off=(*base.retriever.off, name))
        columns.append((f"retriever.signal.{name}=off", replace(base, retriever=section)))
    if answerer:
        for scorer in answerer_scorers():
            if scorer != base.answerer.scorer:
                section = replace(base.answerer, scorer=scorer)
                columns.append((f"scorer={scorer}", replace(base, answerer=section)))
        for flag in answerer_flags():
            section, state = _flip(base.answerer, flag)
            columns.append((f"{flag}={state}", replace(base, answerer=section)))
        for name in answerer_features(base.answerer):
            section = replace(base.answerer, off=(*base.answerer.off, name))
            columns.append((f"feature.{name}=off", replace(base, answerer=section)))
    return columns


def answerer_features(base: AnswererConfig | None = None) -> tuple[str, ...]:
    """The sentence features `base`'s scorer reads (rag/answering/features.py), each of
    which `--compare` switches off by name."""
    from rag.answering.scorer import make_scorer

    config = base or AnswererConfig()
    return tuple(n for n in make_scorer(config).uses if n not in config.off)


def answerer_scorers() -> tuple[str, ...]:
    """The values AnswererConfig.scorer accepts, read from its Literal annotation."""
    return tuple(typing.get_args(typing.get_type_hints(AnswererConfig)["scorer"]))


def load_qa(index_dir: Path, config: PipelineConfig | None, embedder: Embedder | None) -> QA:
    """A QA over `index_dir` with `config`'s retriever and answerer settings, reusing an
    already loaded embedder (loading the model is the slow part)."""
    index = load_index(Path(index_dir), config)
    return QA(index, embedder or Embedder(index.config.embedder))


# --- imported benchmarks -------------------------------------------------------------


def cache_dir_for(root: Path, kind: str, source: Path, options: dict[str, Any]) -> Path:
    """A cache folder keyed by the benchmark file's identity and the import options."""
    source = Path(source).resolve()
    stat = source.stat()
    key = json.dumps(
        [IMPORT_VERSION, kind, str(source), stat.st_size, stat.st_mtime_ns, options],
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(root) / f"{kind}-{source.stem}-{digest}"


def ensure_index(
    corpus: Path, index_dir: Path, embedder: Callable[[], Embedder], log: Callable[[str], None]
) -> None:
    """Build `index_dir` from `corpus` unless it is already up to date. `embedder` is
    called only when a build is needed (loading the model takes seconds)."""
    reason = stale_reason(index_dir, corpus)
    if reason is None:
        return
    log(f"building index at {index_dir} ({reason})")
    report = build_index(corpus, index_dir, PipelineConfig(), embedder=embedder())
    log(f"indexed {report.documents} documents, {report.chunks} chunks in {report.seconds:.0f}s")


def mixed_corpus(corpus: Path, beir_corpus: Path, out: Path) -> Path:
    """A corpus folder at `out` holding `corpus`'s files and an imported BEIR corpus's
    files side by side (copied: the corpus reader skips links that leave the folder), so
    that a question set about `corpus` can be asked with a large unrelated corpus mixed
    in. Kept when it already holds the same files."""
    out = Path(out)
    files = sorted(p for p in Path(corpus).iterdir() if p.is_file())
    extra = sorted(p for p in Path(beir_corpus).iterdir() if p.is_file())
    clash = {p.name for p in files} & {p.name for p in extra}
    if clash:
        raise ValueError(f"file names in both corpora: {sorted(clash)[:5]}")
    out.mkdir(parents=True, exist_ok=True)
    for path in [*files, *extra]:
        target = out / path.name
        if not target.is_file() or target.stat().st_size != path.stat().st_size:
            shutil.copyfile(path, target)
    return out


def save_beir(beir: BeirSet, path: Path) -> None:
    data = {
        "corpus": str(beir.corpus),
        "queries": beir.queries,
        "qrels": beir.qrels,
        "doc_of": [[s, p, d] for (s, p), d in beir.doc_of.items()],
    }
    Path(path).write_text(json.dumps(data), encoding="utf-8")


def load_beir(path: Path) -> BeirSet:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    doc_of = {(s, p): d for s, p, d in data["doc_of"]}
    return BeirSet(Path(data["corpus"]), data["queries"], data["qrels"], doc_of)


def squad_summary(imported: Imported) -> str:
    answerable = sum(q.answerable for q in imported.questions)
    return (
        f"{len(imported.questions)} questions ({answerable} answerable), "
        f"{len(list(imported.corpus.iterdir()))} files, {len(imported.dropped)} dropped"
    )


def scored_chunks(qa: QA, question: str, k: int, config: RetrieverConfig) -> dict[int, Any]:
    """Every candidate chunk the retriever scored for `question`, by chunk id.

    This goes below `QA.ask` (which caps top_k at 20 and folds near-duplicates) to the
    library's retrieval stages: the question's forward pass, its analysis, `retrieve`.
    It is the one place to update if those signatures change."""
    _, by_id = qa.retrieve(question, k, config)
    return by_id


def rank_documents(
    qa: QA, question: str, config: RetrieverConfig, k: int, doc_of: dict[Key, str]
) -> list[str]:
    """The top `k` BEIR documents for a query: every scored chunk (not only the folded
    top hits: near-duplicate chunks are distinct BEIR documents), a document scoring as
    its best chunk (MaxP)."""
    best: dict[str, float] = {}
    for cid, hit in scored_chunks(qa, question, k, config).items():
        chunk = qa.index.chunk(cid)
        doc = doc_of.get((chunk.source, chunk.paragraph))
        if doc is not None and hit.score > best.get(doc, -np.inf):
            best[doc] = hit.score
    return sorted(best, key=lambda d: (-best[d], d))[:k]


def run_beir(
    qa: QA,
    beir: BeirSet,
    config: RetrieverConfig,
    k: int = 100,
    progress: bool | None = None,
    desc: str = "queries",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """nDCG@10 and recall@100 over the qrels' queries, in process. The API caps top_k at
    20, so BEIR runs the retriever directly. Candidates per side are widened to 3*k so
    that `k` distinct documents can be ranked; the fused scoring is unchanged."""
    config = replace(config, candidates=max(config.candidates, 3 * k))
    rows, latencies = [], []
    for qid in progress_bar(list(beir.queries), desc, progress):
        started = time.perf_counter()
        ranked = rank_documents(qa, beir.queries[qid], config, k, beir.doc_of)
        latencies.append((time.perf_counter() - started) * 1000)
        qrels = beir.qrels[qid]
        rows.append(
            {
                "id": qid,
                "query": beir.queries[qid],
                "ndcg@10": metrics.ndcg_at(ranked, qrels, 10),
                "recall@100": metrics.recall_at(ranked, qrels, 100),
                "relevant": sorted(d for d, g in qrels.items() if g > 0),
                "top10": ranked[:10],
            }
        )
    p50, p95 = metrics.percentile(latencies, 50), metrics.percentile(latencies, 95)
    summary = {
        "n": len(rows),
        "ndcg@10": metrics.mean(r["ndcg@10"] for r in rows),
        "recall@100": metrics.mean(r["recall@100"] for r in rows),
        "latency_p50_ms": None if p50 is None else round(p50, 2),
        "latency_p95_ms": None if p95 is None else round(p95, 2),
    }
    return summary, rows
