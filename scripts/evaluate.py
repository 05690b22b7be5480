#!/usr/bin/env python
"""Run a fixed question set through the QA system and print the figures that tell
whether a change helped.

    python scripts/evaluate.py                          # seeds set, index/, in process
    python scripts/evaluate.py --compare                # retriever modes, answerer ablations
    python scripts/evaluate.py --url http://127.0.0.1:8000 --limit 20
    python scripts/evaluate.py --squad dev-v1.1.json --articles 10
    python scripts/evaluate.py --beir scifact/ --compare

Exit status: 0 when every --min-*/--max-* gate holds, 1 when one fails, 2 on a setup
error (missing index, unreadable question set, ...).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from rag.config import PipelineConfig
from rag.errors import RagError
from rag.evaluation import formats, metrics, report, runner
from rag.runtime import configure

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUESTIONS = ROOT / "scripts" / "questions" / "seeds.jsonl"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-eval"


class UsageError(Exception):
    """A setup problem; the message says what to change."""


@functools.cache
def embedder(model: str) -> Any:
    """One model per process, shared by index builds and every --compare column."""
    from rag.config import EmbedderConfig
    from rag.embedder import Embedder

    log(f"loading model {model}")
    return Embedder(EmbedderConfig(model=model))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    modes = ", ".join(f"mode={m}" for m in runner.retriever_modes())
    r_flags = ", ".join(f"retriever.{f}=off" for f in runner.retriever_flags())
    signals = ", ".join(f"retriever.signal.{s}=off" for s in runner.retriever_signals())
    a_flags = ", ".join(f"{f}=off" for f in runner.answerer_flags())
    scorers = ", ".join(f"scorer={s}" for s in runner.answerer_scorers())
    features = ", ".join(f"feature.{f}=off" for f in runner.answerer_features())
    epilog = (
        "--compare runs these configurations in one process, side by side:\n"
        f"  {modes}\n      every value of RetrieverConfig.mode\n"
        f"  {r_flags}\n      each boolean of RetrieverConfig flipped\n"
        f"  {signals}\n      each signal of the fused score switched off by name\n"
        f"  {scorers}\n      the answer scorer other than the index's\n"
        f"  {a_flags}\n      each boolean of AnswererConfig flipped\n"
        f"  {features}\n      each sentence feature of the scorer switched off by name\n"
        "(read from rag.config, so new modes and flags appear here by themselves; a flag\n"
        "that is off by default is switched on). The column marked * is the index's own\n"
        "configuration; gates and --show-failures refer to it. BEIR runs compare the\n"
        "retriever columns only."
    )
    p = argparse.ArgumentParser(
        description=__doc__,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_argument_group("what to run")
    src.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL set")
    src.add_argument("--index", type=Path, default=Path("index"), help="index folder")
    src.add_argument("--url", help="run against a server through POST /ask instead")
    src.add_argument("--api-key", default=os.environ.get("RAG_API_KEY"), help="for --url")
    src.add_argument("--timeout", type=float, default=60.0, help="seconds per request (--url)")
    src.add_argument("--top-k", type=int, default=10, help="citations per question (max 20)")
    src.add_argument("--limit", type=int, help="only N questions, evenly spread over the set")
    src.add_argument(
        "--half",
        choices=formats.SPLITS,
        help="only the questions of one half of the set (its `split` field): dev or test",
    )
    src.add_argument(
        "--mix-beir",
        type=Path,
        metavar="DIR",
        help="ask the set over --corpus with this BEIR corpus (e.g. scifact/) mixed in; the "
        "mixed index is built once under --cache-dir",
    )
    src.add_argument(
        "--corpus",
        type=Path,
        default=ROOT / "seeds",
        help="the set's corpus: answers and citations are checked verbatim against these "
        "files on disk (imported with --squad or --mix-beir: the imported files)",
    )
    src.add_argument("--mode", choices=runner.retriever_modes(), help="retriever mode")
    src.add_argument("--compare", action="store_true", help="run the configurations below")
    pub = p.add_argument_group("public benchmarks (in process, index cached)")
    pub.add_argument("--squad", type=Path, help="SQuAD v1.1 / v2.0 JSON file")
    pub.add_argument("--articles", type=int, help="SQuAD: only the first N articles")
    pub.add_argument("--squad-layout", choices=("article", "context"), default="article")
    pub.add_argument("--beir", type=Path, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    pub.add_argument("--beir-layout", choices=("document", "paragraph"), default="document")
    pub.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    pub.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="imported corpora")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, help="write every figure and answer as JSON")
    out.add_argument("--show-failures", action="store_true", help="list the failed questions")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    gates = p.add_argument_group("quality gates (exit 1 when a figure falls short)")
    for gate in report.GATES:
        word = "at least" if gate.minimum else "at most"
        gates.add_argument(gate.flag, type=float, metavar="X", help=f"{gate.metric} {word} X")
    return p


def gate_bars(args: argparse.Namespace) -> dict[str, float]:
    bars = {}
    for gate in report.GATES:
        value = getattr(args, gate.flag.lstrip("-").replace("-", "_"))
        if value is not None:
            bars[gate.flag] = value
    return bars


def check_args(args: argparse.Namespace) -> None:
    if args.squad and args.beir:
        raise UsageError("pass either --squad or --beir, not both")
    if args.url and (args.squad or args.beir):
        raise UsageError(
            "--squad/--beir build their own index in process; drop --url. To test a server "
            "on SQuAD, run once in process, then serve <cache>/index and pass "
            "--questions <cache>/questions.jsonl --url URL"
        )
    if args.url and (args.compare or args.mode):
        raise UsageError("--compare and --mode need the library; a server has one config")
    if not args.beir and not 1 <= args.top_k <= 20:
        raise UsageError(f"--top-k must be between 1 and 20 (the API's cap), got {args.top_k}")
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.mix_beir and (args.url or args.squad or args.beir):
        raise UsageError(
            "--mix-beir builds its own mixed index in process; drop --url/--squad/--beir"
        )


def open_index(path: Path) -> Any:
    from rag.index import load_index

    if not (path / "manifest.json").is_file():
        raise UsageError(
            f"no index at {path}: build it with `rag index --corpus seeds --out {path}` "
            "or pass --index DIR"
        )
    return load_index(path)


def question_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run the question set once (or once per --compare column). Returns the runs and
    facts about the run for the JSON output."""
    progress = False if args.no_progress else None
    index_dir = args.index
    if args.squad:
        index_dir, questions = squad_set(args)
    else:
        questions = formats.load_questions(args.questions)
    if args.mix_beir:
        index_dir = mixed_index(args)
    if args.half:
        questions = [q for q in questions if q.split == args.half]
        if not questions:
            raise UsageError(f'no question of {args.questions} has "split": "{args.half}"')
    questions = formats.spread(questions, args.limit)
    about: dict[str, Any] = {
        "questions": str(args.squad or args.questions),
        "count": len(questions),
        "top_k": args.top_k,
        "half": args.half,
        "mixed_in": None if args.mix_beir is None else str(args.mix_beir),
    }
    # The files verbatim is checked against: the articles on disk, never the index's copy.
    corpus = index_dir.parent / "corpus" if args.squad or args.mix_beir else args.corpus
    about["verbatim_against"] = str(corpus)
    if args.url:
        target = runner.HttpTarget(args.url, args.api_key, args.timeout, corpus=corpus)
        try:
            records = runner.run_questions(questions, target, args.top_k, progress, args.url)
        finally:
            target.close()
        about["target"] = args.url
        return [run_entry(args.url, None, records)], about

    index = open_index(index_dir)
    base = index.config
    if args.mode:
        base = replace(base, retriever=replace(base.retriever, mode=args.mode))
    columns = runner.configurations(base) if args.compare else [("library*", base)]
    runs = []
    for name, config in columns:
        qa = runner.load_qa(index_dir, config, embedder(base.embedder.model))
        records = runner.run_questions(
            questions, runner.LibraryTarget(qa, name, corpus), args.top_k, progress, name
        )
        runs.append(run_entry(name, config, records))
    about.update(target="library", index=str(index_dir))
    return runs, about


def squad_set(args: argparse.Namespace) -> tuple[Path, list[formats.Question]]:
    if not args.squad.is_file():
        raise UsageError(f"SQuAD file {args.squad} does not exist")
    options = {"articles": args.articles, "layout": args.squad_layout}
    cache = runner.cache_dir_for(args.cache_dir, "squad", args.squad, options)
    if (cache / "questions.jsonl").is_file():
        questions = formats.load_questions(cache / "questions.jsonl")
    else:
        imported = formats.import_squad(
            args.squad, cache, articles=args.articles, layout=args.squad_layout
        )
        log(f"imported SQuAD into {cache}: {runner.squad_summary(imported)}")
        questions = imported.questions
    model = PipelineConfig().embedder.model
    runner.ensure_index(cache / "corpus", cache / "index", lambda: embedder(model), log)
    return cache / "index", questions


def mixed_index(args: argparse.Namespace) -> Path:
    """The index of --corpus with the --mix-beir corpus beside it, built once and cached."""
    if not (args.mix_beir / "corpus.jsonl").is_file():
        raise UsageError(f"{args.mix_beir} is not a BEIR folder (no corpus.jsonl)")
    if not args.corpus.is_dir():
        raise UsageError(f"corpus folder {args.corpus} does not exist (pass --corpus)")
    options = {"layout": "document", "split": "test"}
    beir_cache = runner.cache_dir_for(
        args.cache_dir, "beir", args.mix_beir / "corpus.jsonl", options
    )
    if not (beir_cache / "beir.json").is_file():
        beir = formats.import_beir(args.mix_beir, beir_cache, split="test", layout="document")
        runner.save_beir(beir, beir_cache / "beir.json")
    mix = runner.cache_dir_for(
        args.cache_dir, "mixed", args.mix_beir / "corpus.jsonl", {"corpus": str(args.corpus)}
    )
    corpus = runner.mixed_corpus(args.corpus, beir_cache / "corpus", mix / "corpus")
    model = PipelineConfig().embedder.model
    runner.ensure_index(corpus, mix / "index", lambda: embedder(model), log)
    return mix / "index"


def run_entry(name: str, config: Any, records: list[runner.Record]) -> dict[str, Any]:
    outcomes = [r.outcome for r in records]
    return {
        "name": name,
        "config": None if config is None else asdict(config),
        "metrics": metrics.summarize(outcomes),
        "by_kind": metrics.by_kind(outcomes),
        "records": records,
    }


def beir_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from rag.index import load_index

    if not args.beir.is_dir():
        raise UsageError(f"BEIR folder {args.beir} does not exist")
    qrels = args.beir / "qrels" / f"{args.split}.tsv"
    if not qrels.is_file():
        raise UsageError(f"{qrels} does not exist; pass --split with a file under qrels/")
    options = {"layout": args.beir_layout, "split": args.split}
    cache = runner.cache_dir_for(args.cache_dir, "beir", args.beir / "corpus.jsonl", options)
    if (cache / "beir.json").is_file():
        beir = runner.load_beir(cache / "beir.json")
    else:
        beir = formats.import_beir(args.beir, cache, split=args.split, layout=args.beir_layout)
        runner.save_beir(beir, cache / "beir.json")
        log(
            f"imported BEIR into {cache}: {len(beir.doc_of)} documents, {len(beir.queries)} queries"
        )
    if args.limit:
        keep = formats.spread(list(beir.queries), args.limit)
        beir.queries = {q: beir.queries[q] for q in keep}
    model = embedder(PipelineConfig().embedder.model)
    runner.ensure_index(beir.corpus, cache / "index", lambda: model, log)
    qa = runner.QA(load_index(cache / "index"), model)
    base = qa.index.config
    if args.mode:
        base = replace(base, retriever=replace(base.retriever, mode=args.mode))
    columns = runner.configurations(base, answerer=False) if args.compare else [("library*", base)]
    progress = False if args.no_progress else None
    runs = []
    for name, config in columns:
        summary, rows = runner.run_beir(qa, beir, config.retriever, 100, progress, name)
        runs.append({"name": name, "config": asdict(config), "metrics": summary, "records": rows})
    about = {"benchmark": str(args.beir), "split": args.split, "layout": args.beir_layout}
    about.update(count=len(beir.queries), cache=str(cache), target="library")
    return runs, about


def primary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run gates and failure lists refer to: the column marked *, else the first."""
    return next((r for r in runs if r["name"].endswith("*")), runs[0])


def write_json(path: Path, runs: list[dict[str, Any]], about: dict[str, Any]) -> None:
    main_run = primary(runs)

    def records(run: dict[str, Any]) -> list[dict[str, Any]]:
        return [r.to_dict() if isinstance(r, runner.Record) else r for r in run["records"]]

    data = {
        **about,
        "run": main_run["name"],
        "metrics": main_run["metrics"],
        "by_kind": main_run.get("by_kind"),
        "runs": [{k: v for k, v in r.items() if k != "records"} for r in runs],
        "records": records(main_run),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure()
    try:
        check_args(args)
        runs, about = beir_runs(args) if args.beir else question_runs(args)
    except (UsageError, RagError, formats.QuestionSetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    main_run = primary(runs)
    print(f"{about.get('questions') or about.get('benchmark')}: {about['count']} questions")
    print(report.table({r["name"]: r["metrics"] for r in runs}))
    if main_run.get("by_kind") and len(main_run["by_kind"]) > 1:
        print(f"\nby kind ({main_run['name']}):")
        print(report.kind_table(main_run["by_kind"]))
    if args.show_failures and not args.beir:
        lines = report.failure_lines(main_run["records"])
        print(f"\nfailures ({main_run['name']}): {sum(1 for r in main_run['records'] if r.failed)}")
        print("\n".join(lines))
    if args.out:
        write_json(args.out, runs, about)
        print(f"\nwrote {args.out}")
    failures = report.check_gates(main_run["metrics"], gate_bars(args))
    for line in failures:
        print(f"GATE FAILED: {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
