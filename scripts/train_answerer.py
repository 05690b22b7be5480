"""Train the answerer's learned scorer on SQuAD v1.1 dev and write its weights file.

    python scripts/train_answerer.py                       # writes rag/answering/weights.json
    python scripts/train_answerer.py --report results/answerer-training.json

Articles are split by position (even: train, odd: held out), each half indexed on its
own (cached under --cache-dir). `--per-article` questions of each article are sampled
with `--seed`; each is asked against its half's index and against the same index with
its own article left out (negatives). A logistic regression over the answerer's
features (rag/answering/features.py) is fitted on the train half. Each question is also
asked of its own article with its gold paragraphs taken out (near-topic negatives: same
topic and names, no answer). The abstention threshold written beside the weights is the
highest that keeps 97% of the answerable questions of the seeds set's development half
answered (--calibrate; its test half is never read). The held-out SQuAD half is only
measured: hand-set against learned, best sentence holds a gold answer, answered on its
own article, null without it, null without its gold paragraphs.

Same data, options and code give a byte-identical weights file.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answerer import extract_answer, scored_candidates  # noqa: E402
from rag.answering import training  # noqa: E402
from rag.answering.features import FEATURES  # noqa: E402
from rag.answering.scorer import WEIGHTS_FILE, HandScorer  # noqa: E402
from rag.answering.view import IndexView  # noqa: E402
from rag.config import AnswererConfig, PipelineConfig  # noqa: E402
from rag.evaluation import formats, runner  # noqa: E402
from rag.question import analyse  # noqa: E402
from rag.retriever import retrieve  # noqa: E402
from rag.runtime import configure  # noqa: E402

DEFAULT_SQUAD = ROOT.parent / "shared" / "benchmarks" / "squad-v1.1" / "dev-v1.1.json"
DEFAULT_CALIBRATION = ROOT / "scripts" / "questions" / "seeds.jsonl"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag-eval"
# Features the learned model reads. "key_absent", "type_missing" and "focus_missing" are
# rules, not weights: null when a name of the question is nowhere in the corpus, and only
# sentences that hold what is asked (a number of what is counted, a date, the role asked
# about: rag/answering/gates.py) may answer. Asked with its article left out, a SQuAD
# question's names are still in the index, so the data cannot teach the first; the gates
# are pass/fail by design.
RULES = ("key_absent", "type_missing", "focus_missing")
LEARNED = tuple(n for n in FEATURES if n not in RULES)
# Share of the calibration questions (the development half of the seeds set) that the
# abstention threshold keeps answered.
KEEP = 0.97
# Hits taken beyond the 5 asked for in the near-topic pass, so that 5 remain once the
# gold paragraphs are taken out.
NEAR_DROP = 5


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def half_corpus(corpus: Path, names: list[str], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (out / name).is_file():
            shutil.copyfile(corpus / name, out / name)
    return out


def sample(questions: list[formats.Question], per_article: int, seed: int) -> list:
    """`per_article` questions of each article, drawn with `seed` (sorted by id first,
    so the draw does not depend on file order)."""
    by_file: dict[str, list[formats.Question]] = {}
    for q in questions:
        by_file.setdefault(q.gold[0][0], []).append(q)
    rng = random.Random(seed)
    chosen = []
    for name in sorted(by_file):
        group = sorted(by_file[name], key=lambda q: q.id)
        chosen += sorted(rng.sample(group, min(per_article, len(group))), key=lambda q: q.id)
    return chosen


def rows_for(qa: Any, questions: list[formats.Question], config: PipelineConfig) -> list:
    """Training rows of every question, asked against its own article and without it."""
    index = qa.index
    view = IndexView(index)
    sources = sorted(index.documents)
    rows: list[training.Row] = []
    for start in range(0, len(questions), 64):
        batch = questions[start : start + 64]
        encoded = qa.encode([q.question for q in batch])
        for q, e in zip(batch, encoded, strict=True):
            analysed = analyse(q.question, e)
            own = q.gold[0][0]
            gold = set(q.gold)
            for name, allowed in (("own", None), ("other", [s for s in sources if s != own])):
                hits, by_id = retrieve(index, analysed, 5, config.retriever, allowed)
                for c, values in scored_candidates(view, analysed, hits, by_id, config.answerer):
                    chunk = view.chunk(c.chunk_id)
                    label = int(
                        name == "own"
                        and (chunk.source, chunk.paragraph) in gold
                        and training.holds_answer(
                            view.text(chunk.source)[c.start : c.end], q.answer_any or ()
                        )
                    )
                    rows.append(training.Row(f"{q.id}/{name}", label, values))
            rows += near_rows(view, analysed, q, gold, config)
    return rows


def near_rows(view: IndexView, analysed: Any, q: Any, gold: set, config: PipelineConfig) -> list:
    """The question asked of its own article with its gold paragraphs taken out: the same
    topic, the same names, but not the answer (a near-topic question). A sentence elsewhere
    that holds a gold answer text is a positive; a group without one should get null."""
    hits, by_id = retrieve(view.index, analysed, 5 + NEAR_DROP, config.retriever, None)

    def is_gold(cid: int) -> bool:
        chunk = view.chunk(cid)
        return (chunk.source, chunk.paragraph) in gold

    kept, by_id = training.without(hits, by_id, is_gold, 5)
    rows = []
    for c, values in scored_candidates(view, analysed, kept, by_id, config.answerer):
        text = view.text(view.chunk(c.chunk_id).source)[c.start : c.end]
        label = int(training.holds_answer(text, q.answer_any or ()))
        rows.append(training.Row(f"{q.id}/near", label, values))
    return rows


def calibrate(
    weights: Path, questions: Path, corpus: Path, cache: Path, embedder: Any, config: Any
) -> tuple[float, int]:
    """The abstention threshold: the highest that keeps KEEP of the answerable questions
    of the set's development half answered over `corpus` (the test half is never read).
    SQuAD's questions repeat their paragraph's words far more than people asking about
    news do, so a threshold set on SQuAD abstains on paraphrases; the weights stay
    SQuAD's. Questions nulled by a gate or rule do not move it."""
    asked = [q for q in formats.load_questions(questions) if q.split == "dev" and q.answerable]
    runner.ensure_index(corpus, cache / "index", lambda: embedder, log)
    answerer = replace(
        config.answerer, scorer="learned", model_file=str(weights), min_probability=1e-9
    )
    qa = runner.load_qa(cache / "index", replace(config, answerer=answerer), embedder)
    evidence = []
    for q, e in zip(asked, qa.encode([q.question for q in asked]), strict=True):
        analysed = analyse(q.question, e)
        hits, by_id = retrieve(qa.index, analysed, 5, qa.config.retriever)
        answer = extract_answer(qa.index, analysed, hits, by_id, qa.config.answerer)
        if answer.text is not None:
            evidence.append(answer.evidence)
    return training.threshold_keeping(evidence, KEEP), len(evidence)


def measure(rows: list, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Per question: the best sentence holds a gold answer (asked against its own
    article), answered there, and answered null with its article left out."""
    best = training.best_per_group(rows, scores)
    own = [v for g, v in best.items() if g.endswith("/own")]
    other = [v for g, v in best.items() if g.endswith("/other")]
    answerable_near = {r.group for r in rows if r.group.endswith("/near") and r.label}
    near = [v for g, v in best.items() if g.endswith("/near") and g not in answerable_near]
    return {
        "null_near_topic": float(np.mean([s < threshold for s, _ in near])),
        "questions": len(own),
        "answer_holds_gold": float(np.mean([r.label for _, r in own])),
        "answered_own": float(np.mean([s >= threshold for s, _ in own])),
        "null_without_article": float(np.mean([s < threshold for s, _ in other])),
        "answer_holds_gold_and_answered": float(
            np.mean([r.label and s >= threshold for s, r in own])
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--squad", type=Path, default=DEFAULT_SQUAD, help="SQuAD v1.1 dev JSON")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="indexes of the halves")
    p.add_argument("--per-article", type=int, default=40, help="questions sampled per article")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the regression")
    p.add_argument("--out", type=Path, default=WEIGHTS_FILE, help="weights file to write")
    p.add_argument(
        "--calibrate",
        type=Path,
        default=DEFAULT_CALIBRATION,
        help="question set whose development half sets the abstention threshold",
    )
    p.add_argument(
        "--calibrate-corpus", type=Path, default=ROOT / "seeds", help="that set's corpus"
    )
    p.add_argument("--report", type=Path, help="write the held-out figures as JSON")
    args = p.parse_args(argv)
    configure()
    if not args.squad.is_file():
        print(f"error: SQuAD file {args.squad} does not exist (pass --squad)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    cache = runner.cache_dir_for(args.cache_dir, "squad-halves", args.squad, {})
    if not (cache / "all" / "questions.jsonl").is_file():
        formats.import_squad(args.squad, cache / "all")
    questions = formats.load_questions(cache / "all" / "questions.jsonl")
    files = sorted(p.name for p in (cache / "all" / "corpus").iterdir())
    halves = {"train": files[0::2], "held_out": files[1::2]}
    from rag.embedder import Embedder

    embedder = Embedder(PipelineConfig().embedder)
    config = replace(PipelineConfig(), answerer=AnswererConfig(scorer="hand"))
    rows: dict[str, list[training.Row]] = {}
    for half, names in halves.items():
        corpus = half_corpus(cache / "all" / "corpus", names, cache / half / "corpus")
        runner.ensure_index(corpus, cache / half / "index", lambda: embedder, log)
        qa = runner.load_qa(cache / half / "index", config, embedder)
        asked = sample(
            [q for q in questions if q.gold[0][0] in set(names)], args.per_article, args.seed
        )
        log(f"{half}: {len(names)} articles, {len(asked)} questions")
        rows[half] = rows_for(qa, asked, config)
    x, y = training.matrix(rows["train"], LEARNED)
    model = training.fit_logistic(x, y, LEARNED, l2=args.l2)
    # The model alone, for the calibration to ask with (the threshold is set there).
    unset = cache / "calibration" / "model.json"
    unset.parent.mkdir(parents=True, exist_ok=True)
    unset.write_text(json.dumps({"model": model.to_dict(), "min_probability": 1e-9}) + "\n")
    threshold, calibrated_on = calibrate(
        unset, args.calibrate, args.calibrate_corpus, cache / "calibration", embedder, config
    )
    weights = {
        "model": model.to_dict(),
        "min_probability": threshold,  # already written with 6 decimals, rounded down
        "calibrated_on": {
            "questions": args.calibrate.name,
            "half": "dev",
            "answered": calibrated_on,
            "keep": KEEP,
        },
        "trained_on": {
            "data": args.squad.name,
            "articles": halves["train"],
            "held_out": halves["held_out"],
            "per_article": args.per_article,
            "seed": args.seed,
            "l2": args.l2,
            "rows": len(y),
            "positives": int(y.sum()),
        },
    }
    args.out.write_text(json.dumps(weights, indent=1) + "\n", encoding="utf-8")
    hand = HandScorer(dict(config.answerer.weights), config.answerer.min_score, 12.0)
    report: dict[str, Any] = {}
    for half in ("train", "held_out"):
        hx, _ = training.matrix(rows[half], LEARNED)
        hand_scores = np.asarray([hand.score(r.values) for r in rows[half]])
        hand_best = training.best_per_group(rows[half], hand_scores)
        # The hand-set scorer abstains on the evidence of its best sentence.
        evidence = {g: r.values["evidence"] for g, (_, r) in hand_best.items()}
        hand_fig = measure(
            rows[half],
            np.asarray([hand.score(r.values) for r in rows[half]]),
            -np.inf,
        )
        own = [g for g in evidence if g.endswith("/own")]
        other = [g for g in evidence if g.endswith("/other")]
        answerable_near = {r.group for r in rows[half] if r.group.endswith("/near") and r.label}
        near = [g for g in evidence if g.endswith("/near") and g not in answerable_near]
        hand_fig["answered_own"] = float(np.mean([evidence[g] >= hand.min_score for g in own]))
        hand_fig["null_without_article"] = float(
            np.mean([evidence[g] < hand.min_score for g in other])
        )
        hand_fig["null_near_topic"] = float(np.mean([evidence[g] < hand.min_score for g in near]))
        hand_fig.pop("answer_holds_gold_and_answered")
        report[half] = {
            "hand": hand_fig,
            "learned": measure(rows[half], model.probability(hx), threshold),
        }
    print(
        f"wrote {args.out} (threshold {threshold:.4f}, {len(y)} rows, "
        f"{time.perf_counter() - started:.0f}s)"
    )
    print(
        f"{'half':<10} {'scorer':<8} {'questions':>9} {'holds gold':>10} "
        f"{'answered':>9} {'null w/o':>9} {'null near':>9}"
    )
    for half, figs in report.items():
        for scorer, f in figs.items():
            print(
                f"{half:<10} {scorer:<8} {f['questions']:>9} {f['answer_holds_gold']:>10.3f} "
                f"{f['answered_own']:>9.3f} {f['null_without_article']:>9.3f} "
                f"{f['null_near_topic']:>9.3f}"
            )
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
