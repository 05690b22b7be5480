"""Corpus faults (rag/corpus.py): files that are broken, binary, empty, links or vanish
stop the build naming the file, or are skipped with a warning, and a refused build
leaves the previous index untouched. Real `rag index` runs over copies of the seeds."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from rag import cli
from rag.corpus import read_corpus
from rag.errors import CorpusError
from rag.index import load_index
from tests.cli import fingerprint, rag
from tests.servers import ROOT

pytestmark = pytest.mark.slow

SEEDS = ROOT / "seeds"


@pytest.fixture
def index_copy(seed_index_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "index"
    shutil.copytree(seed_index_dir, out)
    return out


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        (
            "latin1.txt",
            "Caf\u00e9 society.\n".encode("latin-1"),
            "latin1.txt is not valid UTF-8: byte offset 3",
        ),
        (
            "image.txt",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "image.txt is not valid UTF-8: byte offset 0",
        ),
        (
            "nul.md",
            b"text with a NUL\x00 inside",
            "nul.md looks binary: NUL byte at byte offset 15",
        ),
        ("sub/utf16.txt", "hello".encode("utf-16"), "sub/utf16.txt is not valid UTF-8"),
    ],
)
def test_bad_encoding_stops_the_build_naming_file_and_offset(
    index_copy: Path, tmp_path: Path, name: str, data: bytes, says: str
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / name).parent.mkdir(parents=True, exist_ok=True)
    (corpus / name).write_bytes(data)
    before = fingerprint(index_copy)
    proc = rag("index", "--corpus", str(corpus), "--out", str(index_copy))
    assert proc.returncode == 2
    assert says in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert fingerprint(index_copy) == before  # the previous index is untouched


def test_skipped_files_are_warned_about_and_the_build_succeeds(
    index_copy: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET outside the corpus\n")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blank.md").write_text("  \n\n\t\n")
    (corpus / "escape.txt").symlink_to(outside)
    (corpus / "dir-escape").symlink_to(tmp_path)
    (corpus / "broken.txt").symlink_to(corpus / "missing.txt")
    (corpus / "loop1.txt").symlink_to(corpus / "loop2.txt")
    (corpus / "loop2.txt").symlink_to(corpus / "loop1.txt")
    (corpus / "folder.txt").mkdir()
    (corpus / ".hidden.txt").write_text("hidden\n")
    (corpus / "photo.png").write_bytes(b"\x89PNG\x00\xff")

    proc = rag("index", "--corpus", str(corpus), "--out", str(index_copy))
    assert proc.returncode == 0, proc.stderr
    out = proc.stderr
    assert "Traceback" not in out + proc.stdout
    for name, why in [
        ("empty.txt", "the file is empty"),
        ("blank.md", "the file is empty"),
        ("escape.txt", "it links outside the corpus folder"),
        ("broken.txt", "it is a broken symlink"),
        ("loop1.txt", "cannot resolve it"),
        ("folder.txt", "it is not a regular file"),
    ]:
        assert f"skipping {name}: {why}" in out, (name, out)
    index = load_index(index_copy)
    assert set(index.documents) == {p.name for p in SEEDS.glob("*.txt")}
    assert not any("SECRET" in d.text for d in index.documents.values())


def test_file_removed_between_listing_and_reading_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import rag.corpus as corpus_module

    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    doomed = corpus / "doomed.txt"
    doomed.write_text("Here today, gone tomorrow.\n")
    list_files = corpus_module.list_files

    def list_then_delete(root: Path) -> list[Path]:
        files = list_files(root)
        assert doomed in files
        doomed.unlink()  # another process removes it after the listing
        return files

    monkeypatch.setattr(corpus_module, "list_files", list_then_delete)
    with caplog.at_level(logging.WARNING, logger="rag.corpus"):
        docs = read_corpus(corpus)
    assert "doomed.txt" not in {d.source for d in docs}
    assert "skipping doomed.txt: it was removed while the corpus was read" in caplog.text


def test_unreadable_file_stops_the_build_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    locked = corpus / "locked.txt"
    locked.write_text("no entry\n")
    read_bytes = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self.name == "locked.txt":  # chmod 000 does not stop root, so simulate it
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(CorpusError, match=r"cannot read locked\.txt: Permission denied"):
        read_corpus(corpus)
    assert cli.main(["index", "--corpus", str(corpus), "--out", str(tmp_path / "i")]) == 2
    assert "cannot read locked.txt" in capsys.readouterr().err


def test_corpus_with_nothing_usable_stops_the_build(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "empty.txt").write_text("")
    proc = rag("index", "--corpus", str(corpus), "--out", str(tmp_path / "index"))
    assert proc.returncode == 2
    assert "no non-empty .txt or .md files" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = rag("index", "--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "index"))
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr
