"""Printed tables, quality gates and failure listings for evaluation runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rag.evaluation.runner import Record

# Rows of the printed table, with how each figure is shown.
ROWS = (
    ("n", "questions", "int"),
    ("answerable", "answerable", "int"),
    ("unanswerable", "unanswerable", "int"),
    ("errors", "errors", "int"),
    ("hit@1", "hit@1", "share"),
    ("hit@5", "hit@5", "share"),
    ("mrr@10", "MRR@10", "share"),
    ("answer_match", "answer phrase match", "share"),
    ("abstain_unanswerable", "null on unanswerable", "share"),
    ("false_abstention", "false abstention", "share"),
    ("verbatim", "verbatim (citations+answers)", "share"),
    ("verbatim_citations", "  citations", "share"),
    ("verbatim_answers", "  answers", "share"),
    ("ndcg@10", "nDCG@10", "share"),
    ("recall@100", "recall@100", "share"),
    ("latency_p50_ms", "latency p50 (ms)", "ms"),
    ("latency_p95_ms", "latency p95 (ms)", "ms"),
)
KIND_COLUMNS = (
    "n",
    "hit@1",
    "hit@5",
    "mrr@10",
    "answer_match",
    "abstain_unanswerable",
    "false_abstention",
)


@dataclass(frozen=True)
class Gate:
    flag: str  # the command-line option, e.g. "--min-hit1"
    metric: str
    minimum: bool  # True: the figure must be >= the bar; False: <=


GATES = (
    Gate("--min-hit1", "hit@1", True),
    Gate("--min-hit5", "hit@5", True),
    Gate("--min-mrr", "mrr@10", True),
    Gate("--min-answer", "answer_match", True),
    Gate("--min-abstain", "abstain_unanswerable", True),
    Gate("--min-verbatim", "verbatim", True),
    Gate("--max-false-abstention", "false_abstention", False),
    Gate("--max-p95-ms", "latency_p95_ms", False),
    Gate("--min-ndcg10", "ndcg@10", True),
    Gate("--min-recall100", "recall@100", True),
)


def fmt(value: Any, style: str) -> str:
    if value is None:
        return "-"
    if style == "int":
        return str(int(value))
    if style == "ms":
        return f"{value:.1f}"
    return f"{value:.3f}"


def table(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """Metrics as rows, one column per run; rows no run measured are left out."""
    names = list(columns)
    rows = [
        (label, [fmt(columns[n].get(key), style) for n in names])
        for key, label, style in ROWS
        if any(key in columns[n] for n in names)
    ]
    width = max(len(label) for label, _ in rows)
    widths = [max(len(n), *(len(cells[i]) for _, cells in rows)) for i, n in enumerate(names)]
    lines = [" " * width + "  " + "  ".join(n.rjust(w) for n, w in zip(names, widths, strict=True))]
    for label, cells in rows:
        cells_text = "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))
        lines.append(label.ljust(width) + "  " + cells_text)
    return "\n".join(lines)


def kind_table(kinds: Mapping[str, Mapping[str, Any]]) -> str:
    """Per-kind breakdown: one row per question kind."""
    header = ["kind", *KIND_COLUMNS]
    styles = {key: style for key, _, style in ROWS}
    body = [
        [kind, *(fmt(figures.get(c), styles[c]) for c in KIND_COLUMNS)]
        for kind, figures in kinds.items()
    ]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            (cell.ljust(w) if i == 0 else cell.rjust(w))
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *body]
    )


def check_gates(figures: Mapping[str, Any], bars: Mapping[str, float]) -> list[str]:
    """Failed gates, each as a line naming the figure, the bar and the option.
    `bars` maps a Gate.flag to its threshold. A gated figure that the run did not
    measure fails too: a gate that cannot be checked must not pass silently."""
    failures = []
    for gate in GATES:
        if gate.flag not in bars:
            continue
        bar, value = bars[gate.flag], figures.get(gate.metric)
        if value is None:
            failures.append(f"{gate.metric} was not measured on this set ({gate.flag} {bar})")
        elif (value < bar) if gate.minimum else (value > bar):
            word = "below" if gate.minimum else "above"
            failures.append(f"{gate.metric} = {value:.3f} is {word} {gate.flag} {bar}")
    return failures


def failure_lines(records: Sequence[Record], limit: int | None = None) -> list[str]:
    """Each failed question: the question, what was expected and what came back."""
    lines = []
    failed = [r for r in records if r.failed]
    for r in failed[:limit]:
        q, got = r.question, r.result or {}
        expected = (
            "null (unanswerable)"
            if not q.answerable
            else f"{' | '.join(q.answer_any or [])}  in  "
            + ", ".join(f"{s} ¶{p}" for s, p in q.gold)
        )
        cited = ", ".join(f"{c['source']} ¶{c['paragraph']}" for c in got.get("citations", [])[:5])
        lines += [
            f"[{q.kind}] {q.id}: {q.question}",
            f"    why:      {'; '.join(r.failed)}",
            f"    expected: {expected}",
            f"    got:      {got.get('answer')!r}",
            f"    cited:    {cited or '-'}",
        ]
    if limit is not None and len(failed) > limit:
        lines.append(f"... and {len(failed) - limit} more")
    return lines
