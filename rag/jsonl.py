"""JSON Lines, read and written in one place (index files, question sets, BEIR data)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path


def iter_jsonl(path: Path) -> Iterator[dict]:
    """The objects of a JSONL file, one per non-blank line, without reading it all."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: Path) -> list[dict]:
    return list(iter_jsonl(path))


def jsonl_line(row: dict) -> str:
    """One object as a line of JSON Lines (UTF-8 kept as it is)."""
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with Path(path).open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(jsonl_line(row))
