"""How much a better sentence scorer could gain: per kind of question, the share whose
top-5 candidate sentences hold the answer at all (the ceiling) against the share whose
first-ranked sentence holds it, for each scorer.

    python scripts/answer_ceiling.py                        # seeds set, dev half, index/
    python scripts/answer_ceiling.py --out results/ceiling.json

A candidate sentence holds the answer when it lies in a gold paragraph and contains one
of the question's `answer_any` phrases; questions without phrases are left out. The
scorer's choice is the sentence it ranks first with the gates applied (as the answerer
ranks them), before the speaker preference, the widening of the answer and abstention:
so speaker questions, whose gold is the paragraph that names the speaker while the
quote scores best, read low here, and `scripts/evaluate.py` gives the end-to-end
figures. Columns:

- ceiling: a candidate holds the answer;
- learned, hand: the shipped scorers;
- refit: a logistic regression over the same features fitted on this question set
  itself, each question scored by a model fitted on the other folds (folds by the sha256
  of the first gold paragraph, so questions about one paragraph share a fold): what
  in-domain weights would give;
- refit+sentence: the same with one more feature, the cosine of the question's vector
  with the sentence's own vector (each sentence encoded alone by the index's model).

Measuring is all it does: nothing is written but --out.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answerer import gated, scored_candidates  # noqa: E402
from rag.answering import training  # noqa: E402
from rag.answering.scorer import LearnedScorer, make_scorer  # noqa: E402
from rag.answering.view import IndexView  # noqa: E402
from rag.config import AnswererConfig, PipelineConfig  # noqa: E402
from rag.errors import RagError  # noqa: E402
from rag.evaluation import formats, runner  # noqa: E402
from rag.question import analyse  # noqa: E402
from rag.retriever import retrieve  # noqa: E402
from rag.runtime import configure  # noqa: E402

DEFAULT_QUESTIONS = ROOT / "scripts" / "questions" / "seeds.jsonl"
COLUMNS = ("ceiling", "learned", "hand", "refit", "refit+sentence")
FOLDS = 5


def candidate_rows(
    qa: Any, questions: list[formats.Question], config: PipelineConfig
) -> tuple[list[training.Row], list[bool], list[float]]:
    """Every top-5 candidate sentence of every question as a row (group: the question's
    id), whether it passes the gates, and the cosine of the question's vector with the
    sentence encoded alone."""
    view = IndexView(qa.index)
    rows: list[training.Row] = []
    passes: list[bool] = []
    texts: list[str] = []
    vectors: list[np.ndarray] = []
    for q, encoded in zip(questions, qa.encode([q.question for q in questions]), strict=True):
        analysed = analyse(q.question, encoded)
        hits, by_id = retrieve(qa.index, analysed, 5, config.retriever)
        gold = set(q.gold)
        for c, values in scored_candidates(view, analysed, hits, by_id, config.answerer):
            chunk = view.chunk(c.chunk_id)
            text = view.text(chunk.source)[c.start : c.end]
            label = int(
                (chunk.source, chunk.paragraph) in gold
                and training.holds_answer(text, q.answer_any or ())
            )
            rows.append(training.Row(q.id, label, values))
            passes.append(not gated(values, config.answerer))
            texts.append(text)
            vectors.append(encoded.vector)
    unique = sorted(set(texts))
    alone = dict(zip(unique, (e.vector for e in qa.encode(unique)), strict=True))
    cosines = [float(alone[t] @ v) for t, v in zip(texts, vectors, strict=True)]
    return rows, passes, cosines


def shares(
    chosen: dict[str, training.Row], kinds: dict[str, str]
) -> dict[str, dict[str, float | int]]:
    """Per kind (and "all"): how many questions, and the share whose chosen row holds the
    answer."""
    by_kind: dict[str, list[int]] = defaultdict(list)
    for group, row in chosen.items():
        by_kind[kinds[group]].append(row.label)
        by_kind["all"].append(row.label)
    return {
        kind: {"n": len(labels), "share": round(float(np.mean(labels)), 4)}
        for kind, labels in sorted(by_kind.items())
    }


def measure(
    rows: list[training.Row],
    passes: list[bool],
    cosines: list[float],
    kinds: dict[str, str],
    gold_key: dict[str, str],
    config: AnswererConfig,
) -> dict[str, dict[str, dict[str, float | int]]]:
    """Every column of the table (COLUMNS), per kind; `config` names the learned model
    (`model_file`) and the hand-set weights."""
    learned = make_scorer(replace(config, scorer="learned"))
    hand = make_scorer(replace(config, scorer="hand"))
    assert isinstance(learned, LearnedScorer)
    names = learned.model.names
    x, y = training.matrix(rows, names)
    ok = np.asarray(passes)
    fold = np.asarray([training.fold_of(gold_key[r.group], FOLDS) for r in rows])
    with_cosine = np.hstack([x, np.asarray(cosines)[:, None]])
    scores = {
        "ceiling": y.astype(np.float64),
        "learned": learned.model.probability(x),
        "hand": np.asarray([hand.score(r.values) for r in rows]),
        "refit": training.out_of_fold(x, y, fold, names),
        "refit+sentence": training.out_of_fold(with_cosine, y, fold, (*names, "sentence_alone")),
    }
    # The ceiling ignores the gates: any candidate that holds the answer counts.
    return {
        column: shares(
            training.first_choice(rows, s, ok if column != "ceiling" else np.ones_like(ok)),
            kinds,
        )
        for column, s in scores.items()
    }


def table(result: dict[str, dict[str, dict[str, float | int]]]) -> str:
    kinds = list(result["ceiling"])
    lines = [f"{'kind':<12} {'n':>4} " + " ".join(f"{c:>14}" for c in COLUMNS)]
    for kind in kinds:
        n = result["ceiling"][kind]["n"]
        cells = " ".join(f"{result[c][kind]['share']:>14.3f}" for c in COLUMNS)
        lines.append(f"{kind:<12} {n:>4} {cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL set")
    p.add_argument("--index", type=Path, default=ROOT / "index", help="index folder")
    p.add_argument(
        "--half",
        choices=("dev", "test", "all"),
        default="dev",
        help="questions of one half of the set (its `split` field), or all",
    )
    p.add_argument("--model-file", help="answer model to measure (default: the shipped one)")
    p.add_argument("--out", type=Path, help="write the table as JSON")
    args = p.parse_args(argv)
    configure()
    try:
        questions = [
            q
            for q in formats.load_questions(args.questions)
            if q.answerable and q.answer_any and args.half in ("all", q.split)
        ]
        if not questions:
            raise formats.QuestionSetError(
                f"{args.questions} has no answerable question with answer phrases in half "
                f"{args.half!r}; pass --half all or another --questions"
            )
        config = replace(PipelineConfig(), answerer=AnswererConfig(scorer="hand"))
        qa = runner.load_qa(args.index, config, None)
    except (RagError, formats.QuestionSetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows, passes, cosines = candidate_rows(qa, questions, config)
    kinds = {q.id: q.kind for q in questions}
    gold_key = {q.id: f"{q.gold[0][0]}#{q.gold[0][1]}" for q in questions}
    answerer = replace(config.answerer, model_file=args.model_file)
    result = measure(rows, passes, cosines, kinds, gold_key, answerer)
    print(f"{args.questions.name}, half {args.half}: {len(questions)} questions, {len(rows)} rows")
    print(table(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "questions": str(args.questions),
            "half": args.half,
            "index": str(args.index),
            "rows": len(rows),
            "folds": FOLDS,
            "columns": result,
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
