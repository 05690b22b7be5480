"""Question sets on disk, and importers that turn public benchmarks into them.

A question set is JSONL, one question per line:
    {"id": "smagin-who", "question": "Who is Nikita Smagin?",
     "gold": [{"source": "000_x.txt", "paragraph": 4}], "answer_any": ["Iran expert"],
     "kind": "fact", "split": "dev"}
`gold` lists every paragraph that answers (numbered like rag.chunker.split_paragraphs);
an unanswerable question has `"gold": []` and `"answer_any": null`. `split` (optional)
puts the question in the development half ("dev", where settings may be chosen) or the
test half ("test", only ever measured).

Importers write a corpus folder that the normal `build_index` reads, and check, by running
the real chunker over every file they write, that each gold paragraph number points at
exactly the text it came from. A benchmark whose numbering drifted would score a
correct system as wrong, silently; here it fails loudly instead.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rag.chunker import split_paragraphs, without_item_marker
from rag.config import ChunkerConfig
from rag.corpus import Document
from rag.jsonl import read_jsonl

Key = tuple[str, int]
SquadLayout = Literal["article", "context"]
BeirLayout = Literal["document", "paragraph"]
# Documents per file in the BEIR "paragraph" layout.
BEIR_DOCS_PER_FILE = 1000
_SENTENCE_END = re.compile(r"[.!?…:;][\"”’'»)\]]*$")
# Kinds of the shipped sets whose questions the articles do not answer: off-topic
# ("unanswerable") and close to the articles' topic ("near-topic").
UNANSWERABLE_KINDS = ("unanswerable", "near-topic")
SPLITS = ("dev", "test")


class QuestionSetError(ValueError):
    """A question set or benchmark file that cannot be used, with what to fix."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    gold: tuple[Key, ...]
    answer_any: tuple[str, ...] | None
    kind: str
    split: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.gold)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "gold": [{"source": s, "paragraph": p} for s, p in self.gold],
            "answer_any": None if self.answer_any is None else list(self.answer_any),
            "kind": self.kind,
            **({"split": self.split} if self.split is not None else {}),
        }


def problems(row: object, strict: bool = False) -> list[str]:
    """What is wrong with one parsed line of a question set (empty when it is valid).

    The reader is lenient where a set written elsewhere may differ harmlessly: extra
    fields are ignored, `kind` is any label, and `answer_any` may be null on an
    answerable question (it then counts for retrieval figures only). `strict` adds the
    rules the shipped sets follow: no extra fields, phrases for every answerable
    question, and a kind of UNANSWERABLE_KINDS exactly when gold is empty."""
    if not isinstance(row, dict):
        return ["a line must be a JSON object"]
    found = []
    for name in ("id", "question", "kind"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            found.append(f"{name!r} must be a non-empty string")
    gold = row.get("gold")
    if not isinstance(gold, list):
        found.append("'gold' must be a list (empty when the articles do not answer)")
        gold = []
    for g in gold:
        ok = (
            isinstance(g, dict)
            and isinstance(g.get("source"), str)
            and g["source"]
            and isinstance(g.get("paragraph"), int)
            and not isinstance(g["paragraph"], bool)
            and g["paragraph"] >= 1
        )
        if not ok:
            found.append(f"gold entry {g!r} must be {{'source': str, 'paragraph': int >= 1}}")
    answers = row.get("answer_any")
    if answers is not None and not (
        isinstance(answers, list)
        and answers
        and all(isinstance(a, str) and a.strip() for a in answers)
    ):
        found.append("'answer_any' must be null or a non-empty list of non-empty phrases")
    if not gold and answers is not None:
        found.append("'answer_any' must be null for an unanswerable question (gold is empty)")
    if row.get("split") is not None and row["split"] not in SPLITS:
        found.append(f"'split' must be one of {list(SPLITS)} or absent, got {row['split']!r}")
    if strict:
        extra = set(row) - {"id", "question", "gold", "answer_any", "kind", "split"}
        if extra:
            found.append(f"unknown fields {sorted(extra)}")
        if gold and answers is None:
            found.append("'answer_any' must list phrases when gold is given")
        if (row.get("kind") in UNANSWERABLE_KINDS) != (not gold):
            found.append(
                f"kinds {list(UNANSWERABLE_KINDS)} are for, and only for, questions with empty gold"
            )
    return found


def parse_question(row: dict) -> Question:
    answers = row["answer_any"]
    return Question(
        id=row["id"],
        question=row["question"],
        gold=tuple((g["source"], g["paragraph"]) for g in row["gold"]),
        answer_any=None if answers is None else tuple(answers),
        kind=row["kind"],
        split=row.get("split"),
    )


def load_questions(path: Path) -> list[Question]:
    """Read and validate a JSONL question set; errors name the line and the problem."""
    path = Path(path)
    if not path.is_file():
        raise QuestionSetError(f"question set {path} does not exist")
    questions, seen, errors = [], set(), []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            errors.append(f"{path}:{number}: not JSON ({exc})")
            continue
        found = problems(row)
        if not found and row["id"] in seen:
            found = [f"duplicate id {row['id']!r}"]
        errors.extend(f"{path}:{number}: {p}" for p in found)
        if not found:
            seen.add(row["id"])
            questions.append(parse_question(row))
    if errors:
        raise QuestionSetError("invalid question set:\n  " + "\n  ".join(errors[:20]))
    if not questions:
        raise QuestionSetError(f"question set {path} has no questions")
    return questions


def save_questions(path: Path, questions: Iterable[Question]) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.to_dict(), ensure_ascii=False) + "\n")


def spread(items: Sequence, limit: int | None) -> list:
    """`limit` items evenly spaced over the sequence (all when limit is None), so a short
    run still samples every kind and article instead of only the first ones."""
    if limit is None or limit >= len(items):
        return list(items)
    if limit <= 0:
        return []
    return [items[(i * len(items)) // limit] for i in range(limit)]


def _slug(text: str, width: int = 40) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:width]
    return slug or "untitled"


def _one_line(text: str) -> str:
    """A text as one line of a corpus file. Line breaks become spaces (same length, so
    answer offsets into the original text stay valid)."""
    return text.replace("\r", " ").replace("\n", " ")


def _check_lines(source: str, text: str, lines: list[str], config: ChunkerConfig) -> list[str]:
    """Kind of each line as the chunker numbers them; raises if the numbering drifts."""
    paragraphs = split_paragraphs(Document(source, text, ""), config)
    if len(paragraphs) != len(lines):
        raise QuestionSetError(
            f"{source}: wrote {len(lines)} paragraphs, the chunker sees {len(paragraphs)}"
        )
    for para, line in zip(paragraphs, lines, strict=True):
        # A line such as "1. Incubation of..." is cited without its list number.
        if text[para.start : para.end] not in (line.strip(), without_item_marker(line.strip())):
            raise QuestionSetError(f"{source}: paragraph {para.number} does not match its line")
    return [p.kind for p in paragraphs]


@dataclass
class Imported:
    """A benchmark turned into a corpus folder and a question set."""

    corpus: Path
    questions: list[Question]
    # Questions left out because their gold paragraph would not be indexed (the chunker
    # classifies it as a heading or noise), with the reason.
    dropped: list[str] = field(default_factory=list)


def import_squad(
    path: Path,
    out: Path,
    *,
    articles: int | None = None,
    layout: SquadLayout = "article",
    config: ChunkerConfig | None = None,
) -> Imported:
    """SQuAD v1.1 or v2.0 JSON into `out/corpus` and `out/questions.jsonl`.

    layout "article": one file per article, one context per line (paragraph n is the
    article's n-th context); "context": one file per context (always paragraph 1).
    `answer_any` holds the distinct gold answer texts; v2.0's impossible questions
    become unanswerable (gold empty)."""
    config = config or ChunkerConfig()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        chosen = data["data"][:articles] if articles is not None else data["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise QuestionSetError(
            f"{path} is not SQuAD JSON (expected {{'data': [{{'title', 'paragraphs'}}]}}): {exc}"
        ) from None
    corpus = Path(out) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    dropped: list[str] = []
    seen: set[str] = set()
    for a, article in enumerate(chosen):
        contexts = [_one_line(p["context"]) for p in article["paragraphs"]]
        title = _slug(article.get("title", ""))
        if layout == "article":
            files = [(f"{a:03d}_{title}.txt", contexts)]
            where = [(files[0][0], i + 1) for i in range(len(contexts))]
        elif layout == "context":
            files = [(f"{a:03d}_{i:03d}_{title}.txt", [c]) for i, c in enumerate(contexts)]
            where = [(name, 1) for name, _ in files]
        else:
            raise QuestionSetError(f"unknown SQuAD layout {layout!r}; valid: article, context")
        kinds: dict[Key, str] = {}
        for name, lines in files:
            text = "\n".join(lines) + "\n"
            (corpus / name).write_text(text, encoding="utf-8")
            for number, kind in enumerate(_check_lines(name, text, lines, config), start=1):
                kinds[(name, number)] = kind
        for paragraph, key in zip(article["paragraphs"], where, strict=True):
            for qa in paragraph["qas"]:
                qid = str(qa["id"])
                if qid in seen or not qa["question"].strip():
                    continue
                seen.add(qid)
                if qa.get("is_impossible"):
                    questions.append(Question(qid, qa["question"], (), None, "unanswerable"))
                    continue
                answers = tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"]))
                if not answers:
                    dropped.append(f"{qid}: no gold answer text")
                elif kinds[key] != "body":
                    dropped.append(f"{qid}: its context is a {kinds[key]}, never indexed")
                else:
                    questions.append(Question(qid, qa["question"], (key,), answers, "squad"))
    save_questions(Path(out) / "questions.jsonl", questions)
    return Imported(corpus, questions, dropped)


@dataclass
class BeirSet:
    corpus: Path
    # query id -> text, for the queries of the chosen qrels split, in file order
    queries: dict[str, str]
    # query id -> {document id: grade}
    qrels: dict[str, dict[str, int]]
    # (source, paragraph) -> document id, for every body paragraph written
    doc_of: dict[Key, str]


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise QuestionSetError(f"BEIR folder lacks {path.name} (expected at {path})")
    return read_jsonl(path)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels TSV (query-id, corpus-id, score; header optional)."""
    if not path.is_file():
        raise QuestionSetError(f"BEIR qrels file {path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3:
                continue
            try:
                grade = int(row[2])
            except ValueError:
                continue  # the header line
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def _beir_line(text: str) -> str:
    """One document as a line the chunker indexes as body: a line with no final
    punctuation and few words would be taken for a heading and never indexed, so it
    gets a final full stop."""
    line = " ".join(text.split())
    if not _SENTENCE_END.search(line):
        line += "."
    return line


def import_beir(
    folder: Path,
    out: Path,
    *,
    split: str = "test",
    layout: BeirLayout = "document",
    config: ChunkerConfig | None = None,
) -> BeirSet:
    """A BEIR dataset (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) into a corpus.

    layout "document": one file per document, `# title` as a Markdown heading (so the
    chunker gives it to every chunk as context) and the text on the next line;
    "paragraph": BEIR_DOCS_PER_FILE documents per file, one line each, title and text
    joined with a space as BEIR's own dense baselines do."""
    config = config or ChunkerConfig()
    folder = Path(folder)
    docs = _read_jsonl(folder / "corpus.jsonl")
    all_queries = {str(q["_id"]): q["text"] for q in _read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv")
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise QuestionSetError(f"qrels name queries absent from queries.jsonl: {missing[:5]}")
    corpus = Path(out) / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    doc_of: dict[Key, str] = {}
    used: set[str] = set()

    def write(name: str, lines: list[str], ids: list[str | None]) -> None:
        text = "\n".join(lines) + "\n"
        (corpus / name).write_text(text, encoding="utf-8")
        kinds = _check_lines(name, text, lines, config)
        for number, (kind, doc_id) in enumerate(zip(kinds, ids, strict=True), start=1):
            if kind == "body" and doc_id is not None:
                doc_of[(name, number)] = doc_id

    batch: tuple[list[str], list[str | None]] = ([], [])
    for i, doc in enumerate(docs):
        doc_id = str(doc["_id"])
        title = " ".join(str(doc.get("title") or "").split())
        body = " ".join(str(doc.get("text") or "").split())
        if not title and not body:
            continue
        if layout == "document":
            name = _slug(doc_id, 80) + ".md"
            if name in used:
                name = f"{_slug(doc_id, 60)}_{hashlib.sha1(doc_id.encode()).hexdigest()[:8]}.md"
            used.add(name)
            if title and body:
                write(name, [f"# {title}", _beir_line(body)], [None, doc_id])
            else:
                write(name, [_beir_line(title or body)], [doc_id])
        elif layout == "paragraph":
            batch[0].append(_beir_line(f"{title} {body}".strip()))
            batch[1].append(doc_id)
            if len(batch[0]) == BEIR_DOCS_PER_FILE or i == len(docs) - 1:
                write(f"part-{len(used):05d}.txt", *batch)
                used.add(str(len(used)))
                batch = ([], [])
        else:
            raise QuestionSetError(f"unknown BEIR layout {layout!r}; valid: document, paragraph")
    if batch[0]:
        write(f"part-{len(used):05d}.txt", *batch)
    queries = {q: all_queries[q] for q in all_queries if q in qrels}
    return BeirSet(corpus, queries, qrels, doc_of)
