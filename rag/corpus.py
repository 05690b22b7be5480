"""Corpus: read a folder of .txt and .md articles as UTF-8 documents.

Rules (documented in the README):
- Only regular `.txt` and `.md` files count; hidden files and folders are ignored.
- A file that is not valid UTF-8 stops the build with its name and the byte offset.
- An empty (or whitespace-only) file is skipped with a warning.
- A symlink that resolves outside the corpus root, a broken symlink or a symlink loop is
  skipped with a warning.
- A file that disappears between listing and reading is skipped with a warning.
- A file that exists but cannot be read (permissions, I/O error) stops the build.
- A `.txt`/`.md` name that is not a regular file (a folder, a FIFO) is skipped with a warning.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusError

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus root, with forward slashes
    text: str
    sha256: str


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def list_files(root: Path) -> list[Path]:
    """Candidate article files under `root`, sorted by relative path."""
    if not root.is_dir():
        raise CorpusError(f"corpus folder {root} does not exist or is not a folder")
    real_root = root.resolve()
    files: list[Path] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if _is_hidden(rel) or path.suffix.lower() not in SUFFIXES:
            continue
        try:
            resolved = path.resolve(strict=True)
        except FileNotFoundError:
            log.warning("skipping %s: it is a broken symlink or was removed", rel)
            continue
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (3.11)
            log.warning("skipping %s: cannot resolve it (%s)", rel, exc)
            continue
        if not resolved.is_relative_to(real_root):
            log.warning("skipping %s: it links outside the corpus folder", rel)
            continue
        if path.is_file():
            files.append(path)
        else:
            log.warning("skipping %s: it is not a regular file", rel)
    return files


def decode(data: bytes, name: str) -> str:
    """Decode UTF-8 strictly; the error names the file and the first bad byte offset."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{name} is not valid UTF-8: byte offset {exc.start} ({exc.reason}); "
            "convert it to UTF-8 or remove it from the corpus"
        ) from None
    if "\x00" in text:
        raise CorpusError(
            f"{name} looks binary: NUL byte at byte offset {data.index(0)}; "
            "remove it from the corpus"
        )
    return text


def read_corpus(root: Path) -> list[Document]:
    """Read every article under `root`. Raises CorpusError if none is usable."""
    root = Path(root)
    docs: list[Document] = []
    for path in list_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.warning("skipping %s: it was removed while the corpus was read", rel)
            continue
        except OSError as exc:
            raise CorpusError(
                f"cannot read {rel}: {exc.strerror or exc}; fix its permissions or remove it "
                "from the corpus"
            ) from None
        text = decode(data, rel)
        if not text.strip():
            log.warning("skipping %s: the file is empty", rel)
            continue
        docs.append(Document(source=rel, text=text, sha256=hashlib.sha256(data).hexdigest()))
    if not docs:
        raise CorpusError(f"no non-empty .txt or .md files in {root}")
    return docs
